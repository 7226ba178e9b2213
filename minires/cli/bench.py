"""``minires bench``: training-step time and memory against PyTorch, or ``--profile`` where the time goes."""
import json

from .. import bench as benchmark
from .output import fail
from .paths import user_path


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "bench", help="time training steps against PyTorch (needs torch); --profile: where the time goes",
        description=benchmark.suite.__doc__)
    parser.add_argument("--profile", action="store_true", help="profile the ResNet-20 training step by op family")
    parser.add_argument("--model", help="only this model, at --batch and --size (default: the standard rows)")
    parser.add_argument("--batch", type=int, default=128, help="images per step, with --model or --profile (default: 128)")
    parser.add_argument("--size", type=int, default=32, help="image height and width, with --model or --profile (default: 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per engine; the median is reported (default: 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per engine before timing (default: 1)")
    parser.add_argument("--memory-format", choices=["channels_last", "contiguous_format"], default="channels_last",
                        help="minires' memory format: channels_last runs the direct convolution kernels, "
                             "contiguous_format (NCHW) the im2col ones (default: channels_last; torch runs NCHW)")
    parser.add_argument("--no-memory", action="store_true", help="skip the separate-process memory runs")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel: --ranks MPI ranks (mpiexec) against one process, same cores; reports "
                             "the allreduce time per step and the scaling efficiency")
    parser.add_argument("--ranks", type=int, default=2, help="ranks for --distributed (default: 2)")
    parser.add_argument("--json", type=user_path, help="write every number to this JSON file")
    parser.add_argument("--results", type=user_path, help="update the models section of this markdown file (RESULTS.md)")
    parser.set_defaults(run=run)


def run(args):
    try:
        import torch  # noqa: F401
    except ImportError:
        return fail("bench", "needs PyTorch: pip install torch==2.13.0 (the CPU build)")
    if args.profile:
        name = args.model or "resnet20"
        rows, total, (conversions, mib) = benchmark.profile(name, args.batch, args.size,
                                                            memory_format=args.memory_format)
        print(_machine())
        print(f"{name} training step at batch {args.batch}, {args.size}x{args.size}, {args.memory_format}: "
              f"{total:.1f} ms per step")
        print(f"{'op':24s} {'phase':9s} {'calls':>6s} {'ms/step':>9s} {'share':>7s}")
        for op, phase, calls, ms, share in rows:
            print(f"{op:24s} {phase:9s} {calls:6.0f} {ms:9.1f} {100 * share:6.1f}%")
        print(f"memory-format conversions inside the step: {conversions:.0f} per step ({mib:.1f} MiB copied)")
        return 0
    if args.distributed:
        return _distributed(args)
    configs = [(args.model, args.batch, args.size)] if args.model else None
    print(_machine())
    print(benchmark.HEADER)
    results = benchmark.run(configs, args.repeats, args.warmup, memory=not args.no_memory,
                            memory_format=args.memory_format)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.results:
        benchmark.update_results_section(args.results, "bench_models",
                                         "Training steps: `python benchmarks/bench_models.py`",
                                         benchmark.markdown(results))
    return 0


def _distributed(args):
    from ..bench.distributed import scaling
    name = args.model or "resnet20"
    single, spread = scaling(name, args.batch, args.size, args.ranks, args.repeats, args.warmup)
    print(f"{name} training step, global batch {args.batch}, {args.size}x{args.size} (median of {args.repeats}):")
    print(f"{'ranks':>5s} {'threads/rank':>12s} {'step s':>8s} {'allreduce ms':>13s} {'share':>6s}")
    for row in (single, spread):
        print(f"{row['ranks']:5d} {row['threads']:12d} {row['step']:8.4f} {1e3 * row['allreduce']:13.2f} "
              f"{100 * row['allreduce'] / row['step']:5.1f}%")
    print(f"scaling efficiency (1 rank's step / {args.ranks} ranks' step, same cores): "
          f"{single['step'] / spread['step']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"single": single, "distributed": spread}, f, indent=1)
    return 0


def _machine():
    """The CPU and the instruction set the direct kernels are built for: timings hold for that machine only."""
    from ..kernels.direct import isa
    try:
        return f"CPU: {isa.describe()}"
    except ImportError:  # numba (and its llvmlite) missing: the reference kernels run
        return f"CPU: {isa.cpu_model()}; direct kernels unavailable (numba is not installed)"
