"""Every convolution shape of ResNet-20 (batch 128, 32x32) and ResNet-18 (batch 32, 64x64): the direct
channels-last kernels (kernels/direct/fast.py) against torch's CPU convolution (its default NCHW format),
forward and backward, in ms and GF/s. The engines alternate repetition by repetition; medians. Each timed
call follows an untimed call of the same pass: inside a network an op follows ops of its own engine, while
right after the other engine's call its OpenMP workers still spin on the cores (5-7x on the first call).

    python benchmarks/bench_direct_conv.py                                  # table on stdout
    python benchmarks/bench_direct_conv.py --results benchmarks/RESULTS.md  # and into its section

The direct timings include what conv2d does around the kernels (weight layout, the partial sums of dW); the
weights are channels-last, as ``nn.Conv2d`` keeps them where the direct kernels run. The first call of each
kernel specialisation (compilation, a load from the disk cache, and on a layer's first use the autotuner's
timing of its candidate blocks) is not timed. The peak is measured first: multiply-adds on the ISA's vectors
with its register budget, and NumPy's sgemm, on numba's threads; every row gives the direct kernels' rate as
a share of the larger. The CPU model and the ISA profile the kernels are built for head the output.
"""
import argparse
import statistics
import time

import numba
import numpy as np
import torch

from minires import bench as benchmark
from minires.kernels.direct import fast as direct_conv, isa
from minires.kernels.direct.simd import vector_ops


def _fma_loop(chains, lanes):
    """A numba kernel in which each thread runs ``chains`` independent multiply-add chains on vectors of
    ``lanes`` float32 for ``steps`` rounds (generated: the number of chains is the point of the measurement)."""
    names = [f"a{k}" for k in range(chains)]
    source = "\n".join([
        "def loop(steps, out):",
        "    for t in prange(out.shape[0]):",
        f"        {', '.join(names)} = {', '.join(['vzero()'] * chains)}",
        "        s = np.float32(1.0) + np.float32(t) * np.float32(1e-9)",
        "        for _ in range(steps):"] +
        [f"            {name} = vsfma(s, {name}, {name})" for name in names] +
        [f"        vstore(out[t], {k * lanes}, {name})" for k, name in enumerate(names)])  # kept: not optimised away
    ops = vector_ops(lanes)
    scope = {"prange": numba.prange, "np": np, "vzero": ops.vzero, "vsfma": ops.vsfma, "vstore": ops.vstore}
    exec(source, scope)
    return numba.njit(parallel=True)(scope["loop"])


def fma_peak_gflops(profile, steps=5_000_000):
    """The float32 multiply-add peak on numba's threads with the ISA's vectors, measured: GF/s (2 flops per
    lane), the best of a block of half the registers and of all but two (latency x issue width must be
    covered by independent chains; more than the registers spill)."""
    best_rate = 0.0
    for chains in (profile.registers // 2, profile.registers - 2):
        loop = _fma_loop(chains, profile.lanes)
        out = np.zeros((numba.get_num_threads(), chains * profile.lanes), np.float32)
        loop(1000, out)
        best = min(_seconds(lambda: loop(steps, out)) for _ in range(3))
        best_rate = max(best_rate, out.shape[0] * steps * chains * profile.lanes * 2 / best / 1e9)
    return best_rate


def sgemm_gflops(size=1536):
    """NumPy's BLAS sgemm on as many threads as numba's: the machine's attainable float32 rate."""
    from threadpoolctl import threadpool_limits
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    with threadpool_limits(limits=numba.get_num_threads(), user_api="blas"):
        a @ a
        best = min(_seconds(lambda: a @ a) for _ in range(5))
    return 2 * size ** 3 / best / 1e9


def _seconds(run):
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


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


def measure(repeats, peak):
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
        print(format_row(rows[-1], peak), flush=True)
    return rows


HEADER = ("| layer | shape | x | fwd ms (GF/s) minires / torch | bwd ms (GF/s) minires / torch | "
          "fwd ratio | bwd ratio | minires fwd / bwd % of peak |\n|---|---|---:|---|---|---:|---:|---:|")


def format_row(r, peak):
    f, b = r["gflop"], 2 * r["gflop"]  # backward: dW and dx, each the forward's work
    rate_f, rate_b = f / r["mr_f"] * 1e3, b / r["mr_b"] * 1e3
    return (f"| {r['layer']} | {r['shape']} | {r['count']} | {r['mr_f']:.2f} ({rate_f:.0f}) / "
            f"{r['t_f']:.2f} ({f / r['t_f'] * 1e3:.0f}) | {r['mr_b']:.2f} ({rate_b:.0f}) / "
            f"{r['t_b']:.2f} ({b / r['t_b'] * 1e3:.0f}) | {r['mr_f'] / r['t_f']:.2f} | {r['mr_b'] / r['t_b']:.2f} | "
            f"{100 * rate_f / peak:.0f} / {100 * rate_b / peak:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--results", help="update this markdown file's direct-convolution section")
    args = parser.parse_args()
    profile = isa.current()
    print(f"CPU and ISA: {isa.describe()}; {numba.get_num_threads()} threads")
    fma, sgemm = fma_peak_gflops(profile), sgemm_gflops()
    peak = max(fma, sgemm)
    ceiling = (f"Peak: float32 multiply-adds in {profile.name} registers {fma:.0f} GF/s, NumPy's sgemm "
               f"{sgemm:.0f} GF/s, on {numba.get_num_threads()} threads; % of peak is of {peak:.0f} GF/s.")
    print(ceiling)
    print(HEADER)
    rows = measure(args.repeats, peak)
    r20 = [r for r in rows if r["layer"].startswith("r20")]
    total = {key: sum(r[key] * r["count"] for r in r20) for key in ("mr_f", "mr_b", "t_f", "t_b")}
    summary = (f"All 19 convolutions of a ResNet-20 step (forward + backward): minires "
               f"{total['mr_f'] + total['mr_b']:.1f} ms, torch {total['t_f'] + total['t_b']:.1f} ms, ratio "
               f"{(total['mr_f'] + total['mr_b']) / (total['t_f'] + total['t_b']):.2f}.")
    print(summary)
    if args.results:
        m = benchmark.machine()
        text = (f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, NumPy {m['numpy']}, numba {m['numba']}, "
                f"torch {m['torch']}; {torch.get_num_threads()} torch threads; medians of {args.repeats}. "
                f"{isa.describe()}.\n\n{ceiling}\n\n"
                + HEADER + "\n" + "\n".join(format_row(r, peak) for r in rows) + "\n\n" + summary)
        benchmark.update_results_section(args.results, f"bench_direct_conv {profile.name}",
                                         f"Direct convolutions per layer, {profile.name} kernels: "
                                         "`python benchmarks/bench_direct_conv.py`", text)


if __name__ == "__main__":
    main()
