"""How measured numbers are written down: the machine they ran on, one line per model for the terminal,
a markdown table, and a named section of benchmarks/RESULTS.md replaced in place."""
import os
import platform

import numpy as np


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
    from .. import __version__
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


