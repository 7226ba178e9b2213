"""``minires parity``: compare a model with its PyTorch twin layer by layer, given identical weights."""
from .. import models
from ..verify.parity import TOLERANCE
from .output import fail


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "parity", help="compare a model with PyTorch layer by layer (needs torch)",
        description="Load identical weights into a minires model and its PyTorch reference, run forward in "
                    "training and evaluation mode and backward of cross-entropy, and print each layer's "
                    "relative errors (max |minires - torch| / max |torch|). By default gradients are compared "
                    "in float64 and forward values in float64 and float32: float32 gradients of a whole network "
                    "differ wherever a ReLU input lies within rounding of zero (a kink), which depends on the "
                    "machine. --dtype float32 shows the float32 gradients too, and explains a layer over "
                    "tolerance by its kink flips when float64 agrees. Exit 1 when a layer fails.")
    parser.add_argument("--model", required=True, help=f"one of: {', '.join(models.names())}")
    parser.add_argument("--shortcut", choices=["A", "B", "C", "none"], help="override the model's shortcut option")
    parser.add_argument("--batch", type=int, default=4, help="images in the input batch (default: 4)")
    parser.add_argument("--size", type=int, help="input height and width (default 32 for CIFAR nets, 64 otherwise)")
    parser.add_argument("--num-classes", type=int, help="classes of the final layer (default: the model's own)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights, input and targets (default: 0)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE["float32"],
                        help="largest relative error accepted in float32 (default: %(default)g)")
    parser.add_argument("--tolerance64", type=float, default=TOLERANCE["float64"],
                        help="largest relative error accepted in float64 (default: %(default)g)")
    parser.add_argument("--dtype", choices=["float32", "float64"],
                        help="float32: also judge float32 gradients; float64: float64 only "
                             "(default: forward in both, gradients in float64)")
    parser.set_defaults(run=run)


def run(args):
    try:
        import torch  # noqa: F401

        from ..verify.parity import check_parity
    except ImportError:
        return fail("parity", "needs PyTorch: pip install torch==2.13.0 (the CPU build)")
    if args.model not in models.names():
        return fail("parity", f"unknown model {args.model!r}; known models: {', '.join(models.names())}")
    kwargs = {}
    if args.shortcut:
        kwargs["shortcut"] = None if args.shortcut == "none" else args.shortcut
    if args.num_classes:
        kwargs["num_classes"] = args.num_classes
    check = check_parity(args.model, args.dtype, batch=args.batch, size=args.size, seed=args.seed,
                         tolerance=args.tolerance, tolerance64=args.tolerance64, **kwargs)
    print_check(check)
    return 0 if check.passed else 1


def columns(check):
    """(header, report, value of a row) for each column the check judges."""
    d, s = check.double, check.single
    forward = lambda mode: lambda row: row.forward[mode]  # noqa: E731
    gradient = lambda mode: lambda row: row.gradient[mode]  # noqa: E731
    stats = lambda row: row.running_stats  # noqa: E731
    if check.dtype in ("float32", "float64"):  # one dtype judged: its five columns
        r = s if check.dtype == "float32" else d
        return [("fwd train", r, forward("train")), ("fwd eval", r, forward("eval")),
                ("grad train", r, gradient("train")), ("grad eval", r, gradient("eval")), ("run. stats", r, stats)]
    return [("fwd32 train", s, forward("train")), ("fwd32 eval", s, forward("eval")),
            ("fwd64 train", d, forward("train")), ("fwd64 eval", d, forward("eval")),
            ("grad64 train", d, gradient("train")), ("grad64 eval", d, gradient("eval")),
            ("stats32", s, stats), ("stats64", d, stats)]


def print_check(check):
    d = check.double
    judged = {"default": "forward in float32 and float64, gradients in float64", "float32": "float32",
              "float64": "float64"}[check.dtype]
    tolerances = (f"float64 {d.tolerance:g}" if check.single is None
                  else f"float32 {check.single.tolerance:g}, float64 {d.tolerance:g}")
    print(f"parity of {d.model} with PyTorch, input {d.input_shape}, {judged}; relative errors "
          f"max|minires - torch| / max|torch| (tolerance {tolerances})")
    table = columns(check)
    header = f"{'layer':14s} " + " ".join(f"{title:>12s}" for title, _, _ in table) + "  verdict"
    print(header)
    print("-" * len(header))
    for index, row in enumerate(d.layers):
        values = " ".join(f"{value(report.layers[index]):12.2e}" for _, report, value in table)
        print(f"{row.name:14s} {values}  {check.verdict(row.name)}")
    for report in filter(None, (check.single, d)):
        for mode in ("train", "eval"):
            print(f"{report.dtype} {mode:5s}: logits {report.logits[mode]:.2e}, loss {report.loss[mode]:.2e}; "
                  f"ReLU inputs on opposite sides of zero in the two engines (kink flips): "
                  f"{report.kink_flips[mode]}")
    explained = sum(check.verdict(row.name).startswith("explained") for row in d.layers)
    print(f"{'PASSED' if check.passed else 'FAILED'}: worst relative error {check.worst:.2e} among the judged values"
          + (f"; {explained} layers over the float32 tolerance are explained by kink flips" if explained else ""))
