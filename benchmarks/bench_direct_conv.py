"""Every convolution shape of ResNet-20 (batch 128, 32x32) and ResNet-18 (batch 32, 64x64): the direct
channels-last kernels (kernels/direct/fast.py) against torch's CPU convolution (its default NCHW format),
forward and backward, in ms and GF/s. The engines alternate repetition by repetition; medians. Each timed
call follows an untimed call of the same pass: inside a network an op follows ops of its own engine, while
right after the other engine's call its OpenMP workers still spin on the cores (5-7x on the first call).

    python benchmarks/bench_direct_conv.py                                  # table on stdout
    python benchmarks/bench_direct_conv.py --results benchmarks/RESULTS.md  # and into its section

The direct timings include what conv2d does around the kernels (weight layout, the partial sums of dW); the
weights are channels-last, as in a network converted with ``model.to(memory_format="channels_last")``. The
first call of each kernel specialisation (compilation or a load from the disk cache) is not timed. The float32
multiply-add peak is measured last, with the same vector helpers on numba's threads.
"""
import argparse
import statistics
import time

import numba
import numpy as np
import torch

from minires import bench as benchmark
from minires.kernels.direct import fast as direct_conv
from minires.kernels.direct.simd import LANES, vsfma, vstore, vzero

CHAINS = 16  # independent accumulators per thread: more than the FMA latency x issue width, in 32 registers


@numba.njit(parallel=True, cache=True)
def _fma_loop(steps, out):
    """Each thread runs CHAINS independent <16 x float> multiply-add chains for ``steps`` rounds."""
    for t in numba.prange(out.shape[0]):
        a0, a1, a2, a3, a4, a5, a6, a7 = vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero()
        b0, b1, b2, b3, b4, b5, b6, b7 = vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero()
        s = np.float32(1.0) + np.float32(t) * np.float32(1e-9)
        for _ in range(steps):
            a0, a1, a2, a3 = vsfma(s, a0, a0), vsfma(s, a1, a1), vsfma(s, a2, a2), vsfma(s, a3, a3)
            a4, a5, a6, a7 = vsfma(s, a4, a4), vsfma(s, a5, a5), vsfma(s, a6, a6), vsfma(s, a7, a7)
            b0, b1, b2, b3 = vsfma(s, b0, b0), vsfma(s, b1, b1), vsfma(s, b2, b2), vsfma(s, b3, b3)
            b4, b5, b6, b7 = vsfma(s, b4, b4), vsfma(s, b5, b5), vsfma(s, b6, b6), vsfma(s, b7, b7)
        for k, v in enumerate((a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7)):
            vstore(out[t], k * LANES, v)  # kept, so the chains are not optimised away


def fma_peak_gflops(steps=20_000_000):
    """The machine's float32 multiply-add peak on numba's threads, measured: GF/s (2 flops per lane)."""
    out = np.zeros((numba.get_num_threads(), CHAINS * LANES), np.float32)
    _fma_loop(1000, out)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        _fma_loop(steps, out)
        best = min(best, time.perf_counter() - start)
    return out.shape[0] * steps * CHAINS * LANES * 2 / best / 1e9

# (label, N, C, H, OC, kernel, stride, padding, how many times the network has it)
LAYERS = [
    ("r20 stem", 128, 3, 32, 16, 3, 1, 1, 1), ("r20 16-16", 128, 16, 32, 16, 3, 1, 1, 6),
    ("r20 16-32/2", 128, 16, 32, 32, 3, 2, 1, 1), ("r20 32-32", 128, 32, 16, 32, 3, 1, 1, 5),
    ("r20 32-64/2", 128, 32, 16, 64, 3, 2, 1, 1), ("r20 64-64", 128, 64, 8, 64, 3, 1, 1, 5),
    ("r18 stem 7x7", 32, 3, 64, 64, 7, 2, 3, 1), ("r18 64-64", 32, 64, 16, 64, 3, 1, 1, 4),
    ("r18 128-128", 32, 128, 8, 128, 3, 1, 1, 3), ("r18 256-256", 32, 256, 4, 256, 3, 1, 1, 3),
    ("r18 512-512", 32, 512, 2, 512, 3, 1, 1, 3), ("r50 1x1 1024-256", 32, 1024, 4, 256, 1, 1, 0, 6),
    ("r18 1x1 64-128/2", 32, 64, 16, 128, 1, 2, 0, 1),
]


def minires_passes(n, c, h, oc, k, stride, padding, rng):
    x = rng.standard_normal((n, h, h, c)).astype(np.float32)
    w = (rng.standard_normal((oc, k, k, c)) * 0.1).astype(np.float32).transpose(0, 3, 1, 2)  # channels-last,
    out = (h + 2 * padding - k) // stride + 1                                               # as in a network
    gy = rng.standard_normal((n, out, out, oc)).astype(np.float32)

    def forward():
        direct_conv.forward(x, w, (stride, stride), (padding, padding))

    def backward():
        direct_conv.weight_grad(x, gy, (k, k), (stride, stride), (padding, padding), channels_last=True)
        direct_conv.input_grad(gy, w, (stride, stride), (padding, padding), (h, h))
    return forward, backward, 2 * n * out * out * oc * c * k * k / 1e9


def torch_passes(n, c, h, oc, k, stride, padding, rng):
    x = torch.from_numpy(rng.standard_normal((n, c, h, h)).astype(np.float32)).requires_grad_()
    w = torch.from_numpy((rng.standard_normal((oc, c, k, k)) * 0.1).astype(np.float32)).requires_grad_()
    out = (h + 2 * padding - k) // stride + 1
    gy = torch.from_numpy(rng.standard_normal((n, oc, out, out)).astype(np.float32))

    def forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, stride=stride, padding=padding)

    def backward():  # forward with the graph, then backward; the forward alone is subtracted below
        x.grad = w.grad = None
        torch.nn.functional.conv2d(x, w, stride=stride, padding=padding).backward(gy)
    return forward, backward


def median_ms(samples):
    return 1e3 * statistics.median(samples)


def measure(repeats):
    rng = np.random.default_rng(0)
    rows = []
    for label, n, c, h, oc, k, stride, padding, count in LAYERS:
        ours_f, ours_b, gflop = minires_passes(n, c, h, oc, k, stride, padding, rng)
        theirs_f, theirs_fb = torch_passes(n, c, h, oc, k, stride, padding, rng)
        runs = {"mr_f": ours_f, "mr_b": ours_b, "t_f": theirs_f, "t_fb": theirs_fb}
        samples = {name: [] for name in runs}
        for i in range(repeats + 1):
            for name, run in runs.items():
                run()
                start = time.perf_counter()
                run()
                if i:  # the first round compiles and warms up
                    samples[name].append(time.perf_counter() - start)
        mr_f, mr_b, t_f = median_ms(samples["mr_f"]), median_ms(samples["mr_b"]), median_ms(samples["t_f"])
        t_b = max(median_ms(samples["t_fb"]) - t_f, 1e-3)
        rows.append({"layer": label, "shape": f"{n}x{c}x{h}x{h} -> {oc}, {k}x{k}/{stride}", "count": count,
                     "mr_f": mr_f, "mr_b": mr_b, "t_f": t_f, "t_b": t_b, "gflop": gflop})
        print(format_row(rows[-1]), flush=True)
    return rows


HEADER = ("| layer | shape | x | fwd ms (GF/s) minires / torch | bwd ms (GF/s) minires / torch | "
          "fwd ratio | bwd ratio |\n|---|---|---:|---|---|---:|---:|")


def format_row(r):
    f, b = r["gflop"], 2 * r["gflop"]  # backward: dW and dx, each the forward's work
    return (f"| {r['layer']} | {r['shape']} | {r['count']} | {r['mr_f']:.2f} ({f / r['mr_f'] * 1e3:.0f}) / "
            f"{r['t_f']:.2f} ({f / r['t_f'] * 1e3:.0f}) | {r['mr_b']:.2f} ({b / r['mr_b'] * 1e3:.0f}) / "
            f"{r['t_b']:.2f} ({b / r['t_b'] * 1e3:.0f}) | {r['mr_f'] / r['t_f']:.2f} | {r['mr_b'] / r['t_b']:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--results", help="update this markdown file's direct-convolution section")
    args = parser.parse_args()
    print(HEADER)
    rows = measure(args.repeats)
    peak = fma_peak_gflops()  # after the layers: its spinning threads must not disturb torch's first calls
    r20 = [r for r in rows if r["layer"].startswith("r20")]
    total = {key: sum(r[key] * r["count"] for r in r20) for key in ("mr_f", "mr_b", "t_f", "t_b")}
    summary = (f"All 19 convolutions of a ResNet-20 step (forward + backward): minires "
               f"{total['mr_f'] + total['mr_b']:.1f} ms, torch {total['t_f'] + total['t_b']:.1f} ms, ratio "
               f"{(total['mr_f'] + total['mr_b']) / (total['t_f'] + total['t_b']):.2f}. The float32 FMA peak "
               f"measured on the same {numba.get_num_threads()} threads: {peak:.0f} GF/s.")
    print(summary)
    if args.results:
        m = benchmark.machine()
        text = (f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, NumPy {m['numpy']}, numba {m['numba']}, "
                f"torch {m['torch']}; {torch.get_num_threads()} torch threads; medians of {args.repeats}.\n\n"
                + HEADER + "\n" + "\n".join(format_row(r) for r in rows) + "\n\n" + summary)
        benchmark.update_results_section(args.results, "bench_direct_conv",
                                         "Direct convolutions per layer: `python benchmarks/bench_direct_conv.py`",
                                         text)


if __name__ == "__main__":
    main()
