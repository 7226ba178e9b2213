"""Time every kernel family's forward + backward for the NumPy reference, numba and torch CPU, in one run.

Shapes: the convolution, batch-norm, pooling and residual layers of CIFAR ResNet-20 at batch 128 and of
ResNet-50's first stage at batch 32 (56x56; its stem max-pool at 112x112). For each row the three engines
are timed in turn, repetition after repetition (so that machine noise hits them alike), and the table gives
medians and the ratios numba/torch and reference/numba.

Also measured: conv2d with the columns kept from forward vs recomputed in backward, and the peak extra bytes
of one conv2d forward + backward at 128x16x32x32, 3x3 (tracemalloc sees NumPy's allocations).

    python benchmarks/bench_kernels.py                       # table on stdout
    python benchmarks/bench_kernels.py --json out.json --results benchmarks/RESULTS.md
    python benchmarks/bench_kernels.py --quick               # fewer repetitions and shapes, for a smoke test
"""
import argparse
import json
import os
import statistics
import time
import tracemalloc

import numpy as np
import torch
import torch.nn.functional as TF

import minires as mr
from minires import F
from minires import bench as benchmark
from minires.kernels import conv_columns
from minires.kernels import im2col as im2col_kernels

FLAVOURS = ("reference", "numba")


# --- the rows: (name, shape description, minires fn, torch fn) ------------------------------------------

def conv_row(label, n, c, hw, oc, k, stride, padding, rng):
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = (rng.standard_normal((oc, c, k, k)) * 0.1).astype(np.float32)
    shape = f"{n}x{c}x{hw}x{hw} -> {oc}, {k}x{k}/{stride}"
    return (f"conv2d {label}", shape, fwd_bwd(lambda a, b: F.conv2d(a, b, stride=stride, padding=padding), x, w),
            torch_fwd_bwd(lambda a, b: TF.conv2d(a, b, stride=stride, padding=padding), x, w))


def im2col_rows(label, n, c, hw, k, stride, padding, rng):
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    args = (k, k, stride, stride, padding, padding, 1, 1)
    col = im2col_kernels.im2col_reference(x, *args)
    shape = f"{n}x{c}x{hw}x{hw}, {k}x{k}/{stride}"
    xt, colt = torch.from_numpy(x), torch.from_numpy(col.reshape(n, c * k * k, -1))

    def pick(name):
        return lambda: getattr(im2col_kernels, f"{name}_{os.environ['MINIRES_KERNELS']}")

    return [
        (f"im2col {label}", shape, lambda: pick("im2col")()(x, *args),
         lambda: TF.unfold(xt, k, padding=padding, stride=stride)),
        (f"col2im {label}", shape, lambda: pick("col2im")()(col, hw, hw, *args[2:]),
         lambda: TF.fold(colt, (hw, hw), k, padding=padding, stride=stride)),
    ]


def batch_norm_row(label, n, c, hw, rng):
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    gamma, beta = np.ones(c, np.float32), np.zeros(c, np.float32)
    mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)
    tmean, tvar = torch.zeros(c), torch.ones(c)
    return (f"batch_norm {label}", f"{n}x{c}x{hw}x{hw}",
            fwd_bwd(lambda a, g, b: F.batch_norm(a, mean, var, g, b, True), x, gamma, beta),
            torch_fwd_bwd(lambda a, g, b: TF.batch_norm(a, tmean, tvar, g, b, training=True), x, gamma, beta))


def pool_rows(label, n, c, hw, k, stride, padding, rng):
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    shape = f"{n}x{c}x{hw}x{hw}, {k}x{k}/{stride}"
    return [
        (f"max_pool2d {label}", shape, fwd_bwd(lambda a: F.max_pool2d(a, k, stride, padding), x),
         torch_fwd_bwd(lambda a: TF.max_pool2d(a, k, stride, padding), x)),
        (f"avg_pool2d {label}", shape, fwd_bwd(lambda a: F.avg_pool2d(a, k, stride, padding), x),
         torch_fwd_bwd(lambda a: TF.avg_pool2d(a, k, stride, padding), x)),
    ]


def global_pool_row(label, n, c, hw, rng):
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    return (f"global_avg_pool {label}", f"{n}x{c}x{hw}x{hw}", fwd_bwd(F.global_avg_pool2d, x),
            torch_fwd_bwd(lambda a: TF.adaptive_avg_pool2d(a, 1), x))


def residual_rows(label, n, c, hw, rng):
    a, b = (rng.standard_normal((n, c, hw, hw)).astype(np.float32) for _ in range(2))
    rows = [(f"residual_add+relu {label}", f"{n}x{c}x{hw}x{hw}",
             fwd_bwd(lambda p, q: F.residual_add(p, q, relu=True), a, b),
             torch_fwd_bwd(lambda p, q: torch.relu(p + q), a, b))]
    if c <= 32:
        before = c // 2
        rows.append((f"shortcut_a {label}", f"{n}x{c}x{hw}x{hw} -> {2 * c}, /2",
                     fwd_bwd(lambda p: F.shortcut_a(p, 2 * c, 2), a),
                     torch_fwd_bwd(lambda p: TF.pad(p[:, :, ::2, ::2], (0, 0, 0, 0, before, c - before)), a)))
    return rows


# --- timing ------------------------------------------------------------------------------------------------

def _fwd_bwd(op, tensors, as_upstream):
    """A closure running op forward and backward once with a fixed random upstream gradient."""
    upstream = {}

    def run():
        for t in tensors:
            t.grad = None
        y = op(*tensors)
        if "g" not in upstream:
            upstream["g"] = as_upstream(np.random.default_rng(0).standard_normal(tuple(y.shape)).astype(np.float32))
        y.backward(upstream["g"])
    return run


def fwd_bwd(op, *arrays):
    return _fwd_bwd(op, [mr.tensor(a, requires_grad=True) for a in arrays], lambda g: g)


def torch_fwd_bwd(op, *arrays):
    return _fwd_bwd(op, [torch.tensor(a, requires_grad=True) for a in arrays], torch.from_numpy)


def time_row(minires_fn, torch_fn, repeats, warmup):
    """Median seconds per engine, the engines alternating within each repetition."""
    runners = {f: minires_fn for f in FLAVOURS}
    runners["torch"] = torch_fn
    samples = {name: [] for name in runners}
    for i in range(warmup + repeats):
        for name, fn in runners.items():
            os.environ["MINIRES_KERNELS"] = name if name in FLAVOURS else "numba"
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


def time_keep_vs_recompute(repeats, warmup, rng):
    os.environ["MINIRES_KERNELS"] = "numba"
    x = rng.standard_normal((128, 16, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32)
    run = fwd_bwd(lambda a, b: F.conv2d(a, b, padding=1), x, w)
    samples = {False: [], True: []}
    for i in range(warmup + repeats):
        for keep in (False, True):
            with conv_columns.keep_columns(keep):
                start = time.perf_counter()
                run()
                if i >= warmup:
                    samples[keep].append(time.perf_counter() - start)
    return {"recompute": statistics.median(samples[False]), "keep": statistics.median(samples[True])}


def conv_peak_memory(keep):
    """Peak bytes allocated beyond what existed before one conv2d forward + backward at 128x16x32x32, 3x3."""
    os.environ["MINIRES_KERNELS"] = "numba"
    rng = np.random.default_rng(1)
    x = mr.tensor(rng.standard_normal((128, 16, 32, 32)).astype(np.float32), requires_grad=True)
    w = mr.tensor((rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32), requires_grad=True)
    g = rng.standard_normal((128, 16, 32, 32)).astype(np.float32)
    conv_columns.clear_workspace()  # the workspace counts: it is allocated inside the measured call
    with conv_columns.keep_columns(keep):
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        F.conv2d(x, w, padding=1).backward(g)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    column_buffer = 128 * 16 * 9 * 32 * 32 * 4
    layer_arrays = x.array.nbytes + w.array.nbytes + g.nbytes + x.grad.nbytes + w.grad.nbytes  # y: like g
    return {"peak_extra_bytes": peak, "column_buffer_bytes": column_buffer,
            "layer_arrays_bytes": layer_arrays, "budget_bytes": column_buffer + layer_arrays}


# --- the run -------------------------------------------------------------------------------------------------

def build_rows(quick, rng):
    rows = []
    resnet20 = [("r20 conv1", 128, 3, 32, 16, 3, 1, 1), ("r20 16-16", 128, 16, 32, 16, 3, 1, 1),
                ("r20 16-32/2", 128, 16, 32, 32, 3, 2, 1), ("r20 32-32", 128, 32, 16, 32, 3, 1, 1),
                ("r20 32-64/2", 128, 32, 16, 64, 3, 2, 1), ("r20 64-64", 128, 64, 8, 64, 3, 1, 1)]
    resnet50 = [("r50 1x1 64-64", 32, 64, 56, 64, 1, 1, 0), ("r50 3x3 64-64", 32, 64, 56, 64, 3, 1, 1),
                ("r50 1x1 64-256", 32, 64, 56, 256, 1, 1, 0), ("r50 1x1 256-64", 32, 256, 56, 64, 1, 1, 0)]
    if quick:
        resnet20, resnet50 = resnet20[1:2], []
    for spec in resnet20 + resnet50:
        rows.append(conv_row(*spec, rng))
    rows += im2col_rows("r20 16", 128, 16, 32, 3, 1, 1, rng)
    if not quick:
        rows += im2col_rows("r20 64", 128, 64, 8, 3, 1, 1, rng)
        rows += im2col_rows("r50 64", 32, 64, 56, 3, 1, 1, rng)
    for label, n, c, hw in [("r20", 128, 16, 32), ("r20", 128, 32, 16), ("r20", 128, 64, 8),
                            ("r50", 32, 64, 56), ("r50", 32, 256, 56)][: 1 if quick else None]:
        rows.append(batch_norm_row(label, n, c, hw, rng))
        rows += residual_rows(label, n, c, hw, rng)
    rows += pool_rows("r50 stem", 32, 64, 56 if quick else 112, 3, 2, 1, rng)
    rows.append(global_pool_row("r20", 128, 64, 8, rng))
    return rows


def markdown(results):
    m = results["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy {m['numpy']}, "
             f"numba {m['numba']} ({m['numba_threads']} threads), torch {m['torch']} ({m['torch_threads']} "
             f"threads), minires {m['minires']}. Median of {results['repeats']} runs after {results['warmup']} "
             f"warm-up, float32, forward + backward (im2col/col2im: the kernel alone; torch: unfold/fold).", "",
             "| kernel | shape | reference ms | numba ms | torch ms | numba / torch | reference / numba |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['name']} | {r['shape']} | {r['reference'] * 1e3:.2f} | {r['numba'] * 1e3:.2f} | "
                     f"{r['torch'] * 1e3:.2f} | {r['numba'] / r['torch']:.2f} | {r['reference'] / r['numba']:.2f} |")
    kr = results["keep_vs_recompute"]
    lines += ["", f"conv2d 128x16x32x32 3x3, forward + backward (numba): columns recomputed in backward "
                  f"{kr['recompute'] * 1e3:.2f} ms, kept from forward {kr['keep'] * 1e3:.2f} ms.", ""]
    for mode, mem in results["memory"].items():
        lines.append(f"Peak extra memory of one conv2d forward + backward at 128x16x32x32, 3x3 ({mode} columns): "
                     f"{mem['peak_extra_bytes'] / 2**20:.1f} MiB; one column buffer is "
                     f"{mem['column_buffer_bytes'] / 2**20:.1f} MiB and the layer's inputs, output and gradients "
                     f"{mem['layer_arrays_bytes'] / 2**20:.1f} MiB (budget {mem['budget_bytes'] / 2**20:.1f} MiB).")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a few shapes, 2 repetitions")
    parser.add_argument("--json", help="write every number to this JSON file")
    parser.add_argument("--results", help="update the kernels section of this markdown file (RESULTS.md)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 2, 1
    rng = np.random.default_rng(0)
    results = {"machine": benchmark.machine(), "repeats": args.repeats, "warmup": args.warmup, "rows": []}
    print(f"{'kernel':26s} {'shape':28s} {'ref ms':>9s} {'numba ms':>9s} {'torch ms':>9s} {'nb/torch':>8s} "
          f"{'ref/nb':>7s}")
    for name, shape, ours, theirs in build_rows(args.quick, rng):
        times = time_row(ours, theirs, args.repeats, args.warmup)
        results["rows"].append({"name": name, "shape": shape, **times})
        print(f"{name:26s} {shape:28s} {times['reference'] * 1e3:9.2f} {times['numba'] * 1e3:9.2f} "
              f"{times['torch'] * 1e3:9.2f} {times['numba'] / times['torch']:8.2f} "
              f"{times['reference'] / times['numba']:7.2f}", flush=True)
    results["keep_vs_recompute"] = time_keep_vs_recompute(args.repeats, args.warmup, rng)
    results["memory"] = {"recomputed": conv_peak_memory(keep=False), "kept": conv_peak_memory(keep=True)}
    text = markdown(results)
    print()
    print(text.split("\n\n", 2)[-1])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.results:
        benchmark.update_results_section(args.results, "bench_kernels",
                                         "Kernels: `python benchmarks/bench_kernels.py`", text)


if __name__ == "__main__":
    main()
