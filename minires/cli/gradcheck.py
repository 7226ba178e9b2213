"""``minires gradcheck``: check ops' backward against float64 finite differences and print a table."""
import argparse

from .. import op_catalog
from .output import fail


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "gradcheck", help="check ops' gradients numerically (float64 central differences)",
        description="Compare each op's backward with float64 central differences under a random upstream "
                    "gradient. Exit 0 when all pass, 1 when any fails.")
    parser.add_argument("op", nargs="?", help="the op to check (see --list)")
    parser.add_argument("--all", action="store_true", help="check every op in the catalog")
    parser.add_argument("--list", action="store_true", help="list the ops that can be checked")
    parser.add_argument("--shape", type=_shape, help="primary input shape, e.g. 3,4 (default: the op's own)")
    parser.add_argument("--seed", type=int, default=0, help="seed for inputs and upstream gradient")
    parser.add_argument("--mode", choices=("full", "directional"), default="full",
                        help="per-element differences, or random directions (two passes each)")
    parser.set_defaults(run=run)
    return parser


def _shape(text):
    try:
        shape = tuple(int(n) for n in text.replace("x", ",").split(",") if n.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 3,4, got {text!r}") from None
    if not shape:
        raise argparse.ArgumentTypeError("give at least one size")
    return shape


def run(args):
    if args.list:
        for name in op_catalog.names():
            case = op_catalog.get(name)
            print(f"{name:20s} default shape {case.shape}, rank {case.ndim[0]}..{case.ndim[1]}")
        return 0
    if args.all == (args.op is not None):
        return fail("gradcheck", "give one op or --all (see --list)")
    names = op_catalog.names() if args.all else [args.op]
    if args.op is not None and args.op not in op_catalog.CASES:
        return fail("gradcheck", f"unknown op {args.op!r}; known ops: {', '.join(op_catalog.names())}")
    if args.op is not None and args.shape and not op_catalog.get(args.op).accepts(args.shape):
        return fail("gradcheck", f"{args.op} {op_catalog.get(args.op).requirement()}, got --shape "
                                 f"{','.join(map(str, args.shape))}")
    header = f"{'op':20s} {'shape':14s} {'mode':12s} {'checked':>7s} {'kinks':>5s} {'max abs err':>11s} " \
             f"{'max rel err':>11s}  result"
    print(header)
    print("-" * len(header))
    failures = 0
    for name in names:
        case = op_catalog.get(name)
        shape = args.shape or case.shape
        if not case.accepts(shape):  # --all with --shape: some ops take other ranks
            print(f"{name:20s} {str(shape):14s} skipped: {case.requirement()}")
            continue
        report = op_catalog.gradcheck_case(case, shape=shape, seed=args.seed, mode=args.mode)
        failures += not report.passed
        print(f"{name:20s} {str(tuple(shape)):14s} {args.mode:12s} {report.checked:7d} {report.kinks:5d} "
              f"{report.max_abs_error:11.2e} {report.max_rel_error:11.2e}  {'ok' if report.passed else 'FAIL'}")
        if not report.passed:
            print(f"    {report.summary()}")
    print(f"{len(names) - failures} passed, {failures} failed")
    return 1 if failures else 0
