"""The lab commands: ``minires gradflow | variance | degradation | shattered | lesion | explain |
landscape | sharpness | joins``.

Each command exposes its experiment's Config fields as flags, runs it, prints what it found, and leaves
CSV/JSON numbers and PNG figures in --out (default: lab/COMMAND).
"""
import argparse
import dataclasses
import os
import time

import types
import typing

from ..analysis import CONFIGS, EXPERIMENTS
from .paths import user_path


SUMMARIES = {
    "explain": "one residual block forward and backward; the gradient split at the join, checked",
    "gradflow": "per-layer gradient norms of plain/residual nets, with and without batch-norm",
    "variance": "forward variance per block: exponential without batch-norm, linear with it",
    "degradation": "train plain-20/56 and ResNet-20/56: does the deeper plain net train worse?",
    "shattered": "gradients along a line of inputs: white noise in deep plain nets",
    "lesion": "delete blocks at test time; path lengths and the gradient they carry",
    "landscape": "loss surfaces around trained plain and residual nets, filter-normalised (Li et al.)",
    "sharpness": "largest Hessian eigenvalue and trace of plain and residual nets, at init and trained",
    "joins": "the gradient at every join: shortcut part vs branch part, across depth, with and without BN",
}


def add_parser(subparsers):
    for name, module in EXPERIMENTS.items():
        parser = subparsers.add_parser(name, help=SUMMARIES[name], description=module.__doc__,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
        hints = typing.get_type_hints(CONFIGS[name])
        for field in dataclasses.fields(CONFIGS[name]):
            _add_option(parser, field.name, hints[field.name], field.default)
        parser.add_argument("--out", type=user_path, help=f"output directory (default: lab/{name})")
        parser.set_defaults(run=run, experiment=name)


def _add_option(parser, name, kind, default):
    """One flag per Config field, read from its type: bool, tuple[X, ...] (several values), Literal[...] (a
    choice), X | None (X, or left out), or a plain int, float or str."""
    flag = "--" + name.replace("_", "-")
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):  # X | None: an X when given
        kind = next(arg for arg in args if arg is not type(None))
        origin, args = typing.get_origin(kind), typing.get_args(kind)
    shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
    options = dict(default=default, help=f"(default: {shown})")
    if kind is bool:
        options.update(type=_boolean, metavar="true|false")
    elif origin is tuple:
        options.update(type=args[0], nargs="+")
    elif origin is typing.Literal:
        options.update(type=type(args[0]), choices=args)
    else:
        options.update(type=kind)
    parser.add_argument(flag, **options)


def _boolean(text):
    return text.lower() in ("1", "true", "yes", "on")


def run(args):
    name = args.experiment
    config_class = CONFIGS[name]
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    directory = args.out or os.path.join("lab", name)
    started = time.perf_counter()
    config = config_class(**values)
    result = EXPERIMENTS[name].run(config, directory, progress=print)
    if name == "explain":
        _print_explain(result)
    if result.get("conclusion"):
        print("what this run shows:")
        for line in result["conclusion"]:
            print(f"  {line}")
    figures = result.get("figures")
    made = "" if figures is None else f" and {len(figures)} figure(s)"
    hint = " (install matplotlib for figures)" if figures == [] else ""
    print(f"{name}: done in {time.perf_counter() - started:.1f} s; numbers{made} in {directory}{hint}")
    return 0


def _print_explain(result):
    print(f"{'node':26s} {'shape':14s} {'mean':>9s} {'std':>9s} {'min':>9s} {'max':>9s} {'||dL/d node||':>14s}")
    for row in result["rows"]:
        print(f"{row['node']:26s} {str(tuple(row['shape'])):14s} {row['mean']:9.4f} {row['std']:9.4f} "
              f"{row['min']:9.4f} {row['max']:9.4f} {row['grad_norm']:14.6f}")
    split = result["split"]
    print("\ndL/dx = dL/dx through F (branch) + dL/dx through the shortcut:")
    print(f"  ||through F|| = {split['norms']['through_branch']:.6f}, ||through shortcut|| = "
          f"{split['norms']['through_shortcut']:.6f}, ||full|| = {split['norms']['full']:.6f}")
    print(f"  max |branch + shortcut - full| = {split['split_max_error']:.2e}")
    check = split["gradcheck"]
    print(f"  full gradient vs central finite differences (float64): max abs error {check['max_abs_error']:.2e}, "
          f"max rel error {check['max_rel_error']:.2e} -> {'ok' if check['passed'] else 'MISMATCH'}")
