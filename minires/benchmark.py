"""Training-step benchmarks against PyTorch on the same machine (``minires bench``,
benchmarks/bench_models.py).

A training step is forward, cross-entropy, backward and an SGD step (momentum 0.9, weight decay 5e-4) on a
fixed random batch, float32. minires and PyTorch (its CPU build, with an identical architecture from
minires.torch_reference and the same weights) are timed in turn, step after step, after warm-up: medians and
their ratio per model. Peak memory is measured in a separate process per engine and model: the peak resident
set size, and its rise over the process's size just before the first step.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from . import functional as F
from . import models, optim
from .errors import MiniresError
from .tensor import Tensor

MODELS = [("resnet20", 128, 32), ("resnet56", 128, 32), ("resnet110", 128, 32), ("resnet18", 32, 64),
          ("resnet50", 32, 64)]
SCALING = [("resnet20", 32, 32), ("resnet20", 256, 32)]  # with the rows above: depth 20/56/110, batch 32/128/256


def _classes(name):
    return 10


def minires_step(name, batch, size, seed=0):
    """A closure running one minires training step."""
    model = models.get(name, num_classes=_classes(name), seed=seed)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    labels = rng.integers(0, _classes(name), batch)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(Tensor(images)), labels)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step, model


def torch_step(name, batch, size, seed=0, weights=None):
    import torch

    from . import torch_reference

    model = torch_reference.build(name, num_classes=_classes(name))
    if weights is not None:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, _classes(name), batch))

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def time_pair(name, batch, size, repeats=3, warmup=1):
    """Median seconds per training step for minires and torch, alternating."""
    ours, model = minires_step(name, batch, size)
    theirs = torch_step(name, batch, size, weights=model.state_dict())
    samples = {"minires": [], "torch": []}
    for i in range(warmup + repeats):
        for engine, step in (("minires", ours), ("torch", theirs)):
            start = time.perf_counter()
            step()
            if i >= warmup:
                samples[engine].append(time.perf_counter() - start)
    return {engine: statistics.median(values) for engine, values in samples.items()}


def _status_bytes(field):
    """VmRSS (now) or VmHWM (peak) of this process from /proc/self/status. (getrusage's ru_maxrss would carry
    the parent's peak across fork and exec, so a child could not measure its own.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise MiniresError(f"{field} not found in /proc/self/status (Linux only)")


def measure_memory_here(engine, name, batch, size, steps=2):
    """In this process: build, then run ``steps`` steps; peak RSS and its rise over the pre-step size."""
    step = minires_step(name, batch, size)[0] if engine == "minires" else torch_step(name, batch, size)
    before = _status_bytes("VmRSS")
    for _ in range(steps):
        step()
    peak = _status_bytes("VmHWM")
    return {"peak_rss": peak, "before_steps_rss": before, "step_rise": max(peak - before, 0)}


def measure_memory(engine, name, batch, size):
    """measure_memory_here in a fresh Python process, so the engines' peaks do not mix."""
    code = (f"import json; from minires.benchmark import measure_memory_here; "
            f"print(json.dumps(measure_memory_here({engine!r}, {name!r}, {batch}, {size})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine():
    """The machine and library versions a table was measured with."""
    import numba
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from . import __version__
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "numba_threads": numba.get_num_threads(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "minires": __version__}


def update_results_section(path, section, heading, text):
    """Replace the ``section`` block of a results file (between its start/end markers), or append it."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = f"{start}\n{text}\n{end}"
    if start in old and end in old:
        new = old.split(start)[0] + block + old.split(end, 1)[1]
    else:
        new = old.rstrip() + f"\n\n## {heading}\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new)


def run(configs=None, repeats=3, warmup=1, memory=True, progress=print):
    configs = configs or MODELS + SCALING
    rows = []
    for name, batch, size in configs:
        times = time_pair(name, batch, size, repeats, warmup)
        row = {"model": name, "batch": batch, "size": size, "minires_s": times["minires"], "torch_s": times["torch"],
               "ratio": times["minires"] / times["torch"]}
        if memory:
            for engine in ("minires", "torch"):
                measured = measure_memory(engine, name, batch, size)
                row[f"{engine}_peak_mib"] = measured["peak_rss"] / 2**20
                row[f"{engine}_step_rise_mib"] = measured["step_rise"] / 2**20
        rows.append(row)
        progress(format_row(row))
    return {"machine": machine(), "repeats": repeats, "warmup": warmup, "rows": rows}


HEADER = (f"{'model':10s} {'batch':>5s} {'size':>4s} {'minires s':>10s} {'torch s':>8s} {'ratio':>6s} "
          f"{'peak MiB (mr / torch)':>22s} {'step rise MiB (mr / torch)':>27s}")


def format_row(row):
    memory = ""
    if "minires_peak_mib" in row:
        memory = (f" {row['minires_peak_mib']:10.0f} / {row['torch_peak_mib']:<9.0f} "
                  f"{row['minires_step_rise_mib']:13.0f} / {row['torch_step_rise_mib']:<11.0f}")
    return (f"{row['model']:10s} {row['batch']:5d} {row['size']:4d} {row['minires_s']:10.3f} {row['torch_s']:8.3f} "
            f"{row['ratio']:6.2f}{memory}")


def markdown(results):
    m = results["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy {m['numpy']}, numba {m['numba']}, "
             f"torch {m['torch']} ({m['torch_threads']} threads), minires {m['minires']}. Training step = forward + "
             f"cross-entropy + backward + SGD (momentum 0.9, weight decay 5e-4), float32, random batch; median of "
             f"{results['repeats']} steps after {results['warmup']} warm-up, the engines alternating. Memory: peak "
             f"RSS of a separate process per engine (2 steps), and its rise over the size just before the first step.",
             "", "| model | batch | input | minires s/step | torch s/step | minires / torch | peak RSS MiB minires | "
                 "peak RSS MiB torch | step rise MiB minires | step rise MiB torch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['model']} | {r['batch']} | {r['size']}x{r['size']} | {r['minires_s']:.3f} | {r['torch_s']:.3f} "
                     f"| {r['ratio']:.2f} | {r.get('minires_peak_mib', float('nan')):.0f} | "
                     f"{r.get('torch_peak_mib', float('nan')):.0f} | {r.get('minires_step_rise_mib', float('nan')):.0f} | "
                     f"{r.get('torch_step_rise_mib', float('nan')):.0f} |")
    return "\n".join(lines)


def profile(name="resnet20", batch=128, size=32, steps=3):
    """Op-family profile of minires training steps: rows (op, phase, calls per step, ms per step, share)."""
    from .profiler import profile_ops

    step, _ = minires_step(name, batch, size)
    step()  # warm-up: numba compilation, workspace allocation
    with profile_ops() as measured:
        for _ in range(steps):
            step()
    total = measured.wall
    return [(op, phase, calls / steps, 1e3 * seconds / steps, seconds / total)
            for op, phase, calls, seconds in measured.table()], 1e3 * total / steps
