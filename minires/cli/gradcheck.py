"""``minires gradcheck``: check ops' backward against float64 finite differences (and, with torch installed,
forward and gradients against PyTorch) over several draws per op and every kernel flavour."""
import argparse
import contextlib

from .. import kernels
from ..verify import op_catalog
from ..errors import ArgumentError
from .output import fail


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "gradcheck", help="check ops' gradients numerically (float64 central differences) and against torch",
        description="For each op, several float64 draws that together cover its options (strides, padding, "
                    "dilation, groups, reductions, ...): backward against central differences under a random "
                    "upstream gradient, and, when torch is installed, forward, gradients and in-place state "
                    "against the op's PyTorch twin (which also catches an op whose forward and backward are "
                    "consistently wrong). Ops that run hand-written kernels are checked with each kernel "
                    "flavour. Exit 0 when all pass, 1 when any fails.")
    parser.add_argument("op", nargs="?", help="the op to check (see --list)")
    parser.add_argument("--all", action="store_true", help="check every op in the catalog")
    parser.add_argument("--list", action="store_true", help="list the ops that can be checked")
    parser.add_argument("--shape", type=_shape, help="primary input shape, e.g. 3,4 (default: the op's own)")
    parser.add_argument("--seed", type=int, default=0, help="first seed of the draws (default: 0)")
    parser.add_argument("--draws", type=int, default=3,
                        help="draws per op at least; more where needed to cover its options (default: 3)")
    parser.add_argument("--mode", choices=("full", "directional"), default="full",
                        help="per-element differences, or random directions (two passes each) (default: full)")
    parser.add_argument("--flavour", choices=(*kernels.FLAVOURS, "all"), default=None,
                        help="kernel flavour for ops that run kernels (default: all when numba imports)")
    parser.add_argument("--no-torch", action="store_true", help="skip the comparison with PyTorch")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first op that fails")
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


def _flavours(choice):
    if choice in (None, "all"):
        return list(kernels.FLAVOURS) if kernels.numba_available() else ["reference"]
    if choice == "numba" and not kernels.numba_available():
        raise ArgumentError("--flavour numba: numba cannot be imported")
    return [choice]


def _torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _has_twin(name):
    return op_catalog.get(name).twin is not None


def run(args):
    if args.list:
        for name in op_catalog.names():
            case = op_catalog.get(name)
            covers = f"; covers {', '.join(case.covers)}" if case.covers else ""
            print(f"{name:20s} default shape {case.shape}, {case.requirement()[6:]}{covers}")
        return 0
    if args.all == (args.op is not None):
        return fail("gradcheck", "give one op or --all (see --list)")
    if args.op is not None and args.op not in op_catalog.CASES:
        return fail("gradcheck", f"unknown op {args.op!r}; known ops: {', '.join(op_catalog.names())}")
    if args.op is not None and args.shape and not op_catalog.get(args.op).accepts(args.shape):
        return fail("gradcheck", f"{args.op} {op_catalog.get(args.op).requirement()}, got --shape "
                                 f"{','.join(map(str, args.shape))}")
    if args.draws < 1:
        return fail("gradcheck", f"--draws must be at least 1, got {args.draws}")
    flavours = _flavours(args.flavour)  # an ArgumentError becomes one line in cli.main
    with_torch = not args.no_torch and _torch_available()
    header = (f"{'op':20s} {'shape':14s} {'flavour':9s} {'draws':>5s} {'checked':>7s} {'kinks':>5s} {'max rel err':>11s} "
              f"{'vs torch':>9s}  result")
    print(header)
    print("-" * len(header))
    passed = failed = 0
    for name in (op_catalog.names() if args.all else [args.op]):
        case = op_catalog.get(name)
        shape = args.shape or case.shape
        if not case.accepts(shape):  # --all with --shape: some ops take other ranks
            print(f"{name:20s} skipped at {shape}: {case.requirement()}")
            continue
        seeds = op_catalog.covering_seeds(case, shape, args.draws, first=args.seed)
        for flavour in (flavours if case.kernels else [None]):
            ok = _check_row(case, shape, seeds, flavour, args.mode, with_torch and _has_twin(name))
            passed, failed = passed + ok, failed + (not ok)
            if failed and args.exitfirst:
                print(f"{passed} passed, {failed} failed (stopped at the first failure)")
                return 1
    if not with_torch:
        print("(vs torch: not compared; install torch==2.13.0 to compare forward and gradients with PyTorch)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _check_row(case, shape, seeds, flavour, mode, with_torch):
    """Check one op with one flavour over the draws; print its row; True when every draw passed."""
    reports, comparisons, labels = [], [], set()
    with kernels.using(flavour) if flavour else contextlib.nullcontext():
        for seed in seeds:
            reports.append(op_catalog.gradcheck_case(case, shape=shape, seed=seed, mode=mode))
            if with_torch:
                comparisons.append(op_catalog.compare_with_torch(case, shape=shape, seed=seed))
            if case.labels:
                labels |= case.labels(*op_catalog.draw_case(case, shape, seed))
    ok = all(r.passed for r in reports) and all(c.passed for c in comparisons)
    torch_error = f"{max(c.worst for c in comparisons):9.1e}" if comparisons else f"{'-':>9s}"
    print(f"{case.name:20s} {str(tuple(shape)):14s} {flavour or '-':9s} {len(seeds):5d} {sum(r.checked for r in reports):7d} "
          f"{sum(r.kinks for r in reports):5d} {max(r.max_rel_error for r in reports):11.2e} {torch_error}  "
          f"{'ok' if ok else 'FAIL'}" + (f"  [{', '.join(sorted(labels))}]" if labels else ""))
    for report in reports:
        if not report.passed:
            print(f"    {report.summary()}")
    for comparison, seed in zip(comparisons, seeds):
        if not comparison.passed:
            print(f"    vs torch, seed {seed}: forward {comparison.forward_error:.2e}, gradients "
                  f"{comparison.gradient_error:.2e}, in-place state {comparison.state_error:.2e} "
                  f"(tolerance {op_catalog.TORCH_TOLERANCE:g})")
    return ok
