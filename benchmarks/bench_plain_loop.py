"""The training loop as a PyTorch user writes it, run by minires and by torch in one process, alternating.

Nothing minires-specific: no memory format named, no ``nn.fuse``, no thread-pool or allocator context — the
model is built, called on an NCHW float32 batch, and stepped:

    model = models.cifar_resnet(depth, shortcut="B"); opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()

torch runs the same architecture (minires.verify.torch_reference) with the same weights. Medians of the step
times after ``--warmup`` steps (the first minires steps compile, load and tune kernels).

    python benchmarks/bench_plain_loop.py                       # ResNet-20, batch 128, 32x32
    python benchmarks/bench_plain_loop.py --depth 56 --results benchmarks/RESULTS.md
"""
import argparse

import numpy as np
import torch

import minires as mr
from minires import F, models, optim
from minires.bench import results
from minires.bench.steps import alternating_medians
from minires.kernels.direct import isa
from minires.verify import torch_reference


def minires_loop(depth, batch, size, rng):
    model = models.cifar_resnet(depth, shortcut="B")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = mr.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = rng.integers(0, 10, batch)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step, model


def torch_loop(depth, batch, size, weights, rng):
    model = torch_reference.build(f"resnet{depth}", num_classes=10, shortcut="B")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()})
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.from_numpy(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def measure(depth, batch, size, steps, warmup):
    rng = np.random.default_rng(0)
    ours, model = minires_loop(depth, batch, size, rng)
    theirs = torch_loop(depth, batch, size, model.state_dict(), rng)
    return alternating_medians({"minires": ours, "torch": theirs}, steps, warmup)  # no allocator context: as a user


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, nargs="+", default=[20])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--results", help="update this markdown file's plain-loop section")
    args = parser.parse_args()
    lines = [f"{isa.describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads; batch "
             f"{args.batch}, {args.size}x{args.size}; medians of {args.steps} steps after {args.warmup}.", "",
             "| network | minires s/step | torch s/step | minires / torch |", "|---|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    for depth in args.depth:
        t = measure(depth, args.batch, args.size, args.steps, args.warmup)
        lines.append(f"| ResNet-{depth} (B), plain loop | {t['minires']:.3f} | {t['torch']:.3f} | "
                     f"{t['minires'] / t['torch']:.2f} |")
        print(lines[-1], flush=True)
    if args.results:
        profile = isa.current().name
        results.update_results_section(args.results, f"bench_plain_loop {profile}",
                                       f"The plain PyTorch-style loop, {profile} kernels: "
                                       "`python benchmarks/bench_plain_loop.py`", "\n".join(lines))


if __name__ == "__main__":
    main()
