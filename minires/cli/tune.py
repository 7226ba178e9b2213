"""``minires tune``: time every register block of every direct-convolution layer of a network ahead of time."""
import time

import numpy as np

from .output import fail


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "tune", help="choose the direct convolutions' register blocks for this CPU ahead of time",
        description="Run one training step of each model with the autotuner timing every candidate register "
                    "block of every convolution layer (kernels/direct/tune.py), and remember the fastest per "
                    "layer for this CPU beside the compiled kernels. Training then starts with them. "
                    "Without it, a layer is tuned on its first use (MINIRES_TUNE=0: never).")
    parser.add_argument("--model", nargs="+", default=["resnet20"], help="models to tune (default: resnet20)")
    parser.add_argument("--batch", type=int, default=128, help="images per step (default: 128)")
    parser.add_argument("--size", type=int, default=32, help="image height and width (default: 32)")
    parser.add_argument("--in-channels", type=int, default=3, help="image channels (default: 3)")
    parser.set_defaults(run=run)


def run(args):
    from .. import F, kernels, models, tensor
    if args.batch < 1 or args.size < 1 or args.in_channels < 1:
        return fail("tune", "--batch, --size and --in-channels must be positive")
    for name in args.model:
        models.get(name, num_classes=10, in_channels=args.in_channels)  # an unknown name fails before any work
    if kernels.conv2d_weight_format(np.float32) != "channels_last":
        print("the direct convolution kernels do not run here (no vector profile for this CPU, or another kernel "
              "flavour): nothing to tune")
        return 0
    from ..kernels.direct import fast, isa
    print(isa.describe())
    tuner = fast.tuner()
    rng = np.random.default_rng(0)
    with tuner.forcing():
        for name in args.model:
            start = time.perf_counter()
            model = models.get(name, num_classes=10, in_channels=args.in_channels)
            x = tensor(rng.standard_normal((args.batch, args.in_channels, args.size, args.size)).astype(np.float32))
            F.cross_entropy(model(x), rng.integers(0, 10, args.batch)).backward()
            print(f"{name}: {len(tuner.timings)} layers tuned so far, {time.perf_counter() - start:.1f} s")
    print(f"{'layer (input, weight or gy, output)':48s} {'default':>30s} {'chosen':>30s}")
    for key, seconds in sorted(tuner.timings.items()):
        default, best = next(iter(seconds)), min(seconds, key=seconds.get)
        print(f"{' '.join(key.split()[1:4]):48s} {_block(default):>20s} {1e3 * seconds[default]:7.2f}ms "
              f"{_block(best):>20s} {1e3 * seconds[best]:7.2f}ms")
    print(f"written to {tuner.path}")
    return 0


def _block(block):
    return f"{block.kind} {block.size}x{block.vectors}"
