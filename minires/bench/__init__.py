"""Benchmarking and profiling against PyTorch on the same machine (``minires bench``).

    steps.py     one training step of each engine on the same network, and their median times
    suite.py     the model table: times, memory and ratios per model; the op profile
    memory.py    peak memory of one engine, measured in a fresh process
    results.py   the machine description, markdown tables and benchmarks/RESULTS.md sections
    profiler.py  where a step's time goes, per op (through minires.op_hooks)
"""
from .memory import measure_memory, measure_memory_here  # noqa: F401
from .results import HEADER, format_row, machine, markdown, update_results_section  # noqa: F401
from .steps import minires_step, time_pair, torch_step  # noqa: F401
from .suite import MODELS, SCALING, profile, run  # noqa: F401
