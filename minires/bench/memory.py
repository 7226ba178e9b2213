"""Peak memory of one engine's training steps, measured in a fresh Python process so that the two engines'
peaks never mix: the peak resident set size, and its rise over the process's size just before the first step.
"""
import json
import subprocess
import sys

from ..errors import MiniresError
from ..allocator import keep_freed_memory
from .steps import minires_step, torch_step


def _status_bytes(field):
    """VmRSS (now) or VmHWM (peak) of this process from /proc/self/status. (getrusage's ru_maxrss would carry
    the parent's peak across fork and exec, so a child could not measure its own.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise MiniresError(f"{field} not found in /proc/self/status (Linux only)")


def measure_memory_here(engine, name, batch, size, memory_format="channels_last", steps=2):
    """In this process: build, then run ``steps`` steps; peak RSS and its rise over the pre-step size."""
    if engine == "minires":
        step = minires_step(name, batch, size, memory_format=memory_format)[0]
    else:
        step = torch_step(name, batch, size)
    before = _status_bytes("VmRSS")
    with keep_freed_memory():  # as the timed steps and training run (minires.allocator)
        for _ in range(steps):
            step()
    peak = _status_bytes("VmHWM")
    return {"peak_rss": peak, "before_steps_rss": before, "step_rise": max(peak - before, 0)}


def measure_memory(engine, name, batch, size, memory_format="channels_last"):
    """measure_memory_here in a fresh Python process, so the engines' peaks do not mix."""
    code = (f"import json; from minires.bench.memory import measure_memory_here; "
            f"print(json.dumps(measure_memory_here({engine!r}, {name!r}, {batch}, {size}, {memory_format!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


