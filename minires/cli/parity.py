"""``minires parity``: compare a model with its PyTorch twin layer by layer, given identical weights."""
from .. import models


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "parity", help="compare a model with PyTorch layer by layer (needs torch)",
        description="Load identical weights into a minires model and its PyTorch reference, run forward in "
                    "training and evaluation mode and backward of cross-entropy, and print each layer's "
                    "relative errors (max |minires - torch| / max |torch|). Exit 1 over the tolerance.")
    parser.add_argument("--model", required=True, help=f"one of: {', '.join(models.names())}")
    parser.add_argument("--shortcut", choices=["A", "B", "C", "none"], help="override the model's shortcut option")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, help="input height and width (default 32 for CIFAR nets, 64 otherwise)")
    parser.add_argument("--num-classes", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.set_defaults(run=run)


def run(args):
    try:
        from ..parity import run_parity
        import torch  # noqa: F401
    except ImportError:
        print("minires parity needs PyTorch: pip install torch==2.13.0 (the CPU build)")
        return 2
    if args.model not in models.names():
        print(f"minires parity: unknown model {args.model!r}; known models: {', '.join(models.names())}")
        return 2
    kwargs = {}
    if args.shortcut:
        kwargs["shortcut"] = None if args.shortcut == "none" else args.shortcut
    if args.num_classes:
        kwargs["num_classes"] = args.num_classes
    report = run_parity(args.model, batch=args.batch, size=args.size, seed=args.seed, tolerance=args.tolerance,
                        dtype=args.dtype, **kwargs)
    print(f"parity of {report.model} with PyTorch, input {report.input_shape} {report.dtype}, relative errors "
          f"max|minires - torch| / max|torch| (tolerance {report.tolerance:g})")
    header = (f"{'layer':14s} {'fwd train':>10s} {'fwd eval':>10s} {'grad train':>10s} {'grad eval':>10s} "
              f"{'run. stats':>10s}")
    print(header)
    print("-" * len(header))
    for row in report.layers:
        flag = "" if row.worst() <= report.tolerance else "  <-- over tolerance"
        print(f"{row.name:14s} {row.forward['train']:10.2e} {row.forward['eval']:10.2e} "
              f"{row.gradient['train']:10.2e} {row.gradient['eval']:10.2e} {row.running_stats:10.2e}{flag}")
    for mode in ("train", "eval"):
        print(f"{mode:5s}: logits {report.logits[mode]:.2e}, loss {report.loss[mode]:.2e}; ReLU inputs on opposite "
              f"sides of zero in the two engines (kinks): {report.kink_flips[mode]}")
    if any(report.kink_flips.values()) and not report.passed:
        print("  A gradient difference may come from those kinks rather than a bug: try another --seed, or "
              "--dtype float64.")
    print(f"{'PASSED' if report.passed else 'FAILED'}: worst relative error {report.worst:.2e}")
    return 0 if report.passed else 1
