"""The lab commands: ``minires gradflow | variance | degradation | shattered | lesion | explain``.

Each command exposes its experiment's Config fields as flags, runs it, prints what it found, and leaves
CSV/JSON numbers and PNG figures in --out (default: lab/COMMAND).
"""
import argparse
import dataclasses
import os
import time

from ..analysis import EXPERIMENTS
from ..analysis.labnet import ACTIVATIONS, INITS
from .paths import user_path

CONFIGS = {name: next(getattr(module, n) for n in dir(module) if n.endswith("Config") and n != "TrainConfig")
           for name, module in EXPERIMENTS.items()}
CHOICES = {"init": INITS, "activation": tuple(ACTIVATIONS)}


SUMMARIES = {
    "explain": "one residual block forward and backward; the gradient split at the join, checked",
    "gradflow": "per-layer gradient norms of plain/residual nets, with and without batch-norm",
    "variance": "forward variance per block: exponential without batch-norm, linear with it",
    "degradation": "train plain-20/56 and ResNet-20/56: does the deeper plain net train worse?",
    "shattered": "gradients along a line of inputs: white noise in deep plain nets",
    "lesion": "delete blocks at test time; path lengths and the gradient they carry",
}


def add_parser(subparsers):
    for name, module in EXPERIMENTS.items():
        parser = subparsers.add_parser(name, help=SUMMARIES[name], description=module.__doc__,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
        for field in dataclasses.fields(CONFIGS[name]):
            _add_option(parser, field)
        parser.add_argument("--out", type=user_path, help=f"output directory (default: lab/{name})")
        parser.set_defaults(run=run, experiment=name)


def _add_option(parser, field):
    flag = "--" + field.name.replace("_", "-")
    default = field.default
    if isinstance(default, bool):
        parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes", "on"), default=default,
                            metavar="true|false", help=f"(default: {default})")
    elif isinstance(default, tuple):
        kind = type(default[0]) if default else str
        parser.add_argument(flag, type=kind, nargs="+", default=default, help=f"(default: {' '.join(map(str, default))})")
    else:
        kind = float if field.name in ("std", "lr") else (type(default) if default is not None else str)
        parser.add_argument(flag, type=kind, default=default, choices=CHOICES.get(field.name),
                            help=f"(default: {default})")


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
