"""Training-step benchmarks against PyTorch on the same machine (``minires bench``,
benchmarks/bench_models.py).

A training step is forward, cross-entropy, backward and an SGD step (momentum 0.9, weight decay 5e-4) on a
fixed random batch, float32. minires and PyTorch (its CPU build, with an identical architecture from
minires.verify.torch_reference and the same weights) are timed in turn, step after step, after warm-up: medians and
their ratio per model. Peak memory is measured in a separate process per engine and model: the peak resident
set size, and its rise over the process's size just before the first step.
"""
from ..allocator import keep_freed_memory
from ..memory_format import channels_last
from .memory import measure_memory
from .profiler import profile_ops
from .results import format_row, machine
from .steps import minires_step, time_pair

MODELS = [("resnet20", 128, 32), ("resnet56", 128, 32), ("resnet110", 128, 32), ("resnet18", 32, 64),
          ("resnet50", 32, 64)]
SCALING = [("resnet20", 32, 32), ("resnet20", 256, 32)]  # with the rows above: depth 20/56/110, batch 32/128/256


def run(configs=None, repeats=3, warmup=1, memory=True, progress=print, memory_format=channels_last):
    configs = configs or MODELS + SCALING
    rows = []
    for name, batch, size in configs:
        times = time_pair(name, batch, size, repeats, warmup, memory_format)
        row = {"model": name, "batch": batch, "size": size, "minires_s": times["minires"], "torch_s": times["torch"],
               "ratio": times["minires"] / times["torch"]}
        if memory:
            for engine in ("minires", "torch"):
                measured = measure_memory(engine, name, batch, size, memory_format)
                row[f"{engine}_peak_mib"] = measured["peak_rss"] / 2**20
                row[f"{engine}_step_rise_mib"] = measured["step_rise"] / 2**20
        rows.append(row)
        progress(format_row(row))
    return {"machine": machine(), "repeats": repeats, "warmup": warmup, "memory_format": memory_format, "rows": rows}


def profile(name="resnet20", batch=128, size=32, steps=3, memory_format=channels_last):
    """Op-family profile of minires training steps: rows (op, phase, calls per step, ms per step, share), ms
    per step, and the memory-format conversions per step (count, MiB) — a conversion is never a silent cost."""
    step, _ = minires_step(name, batch, size, memory_format=memory_format)
    with keep_freed_memory():  # as training runs (minires.allocator)
        step()  # warm-up: numba compilation, workspace allocation, the heap grown to a step's size
        with profile_ops() as measured:
            for _ in range(steps):
                step(measured)
    total = measured.wall
    rows = [(op, phase, calls / steps, 1e3 * seconds / steps, seconds / total)
            for op, phase, calls, seconds in measured.table()]
    return rows, 1e3 * total / steps, (measured.conversions / steps, measured.conversion_bytes / steps / 2**20)
