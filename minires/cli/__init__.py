"""The ``minires`` command line: ``minires <command> ...`` or ``python -m minires <command> ...``.

Each command lives in its own module in this package with ``add_parser(subparsers)`` and
``run(args) -> exit code``; this file only assembles them. The CLI is the only part of minires that prints.
"""
import argparse
import logging
import os
import sys

from ..version import __version__
from . import bench, convert, evaluate, gradcheck, graph, lab, parity, train, tune
from .output import USER_FAULTS, describe, fail

COMMANDS = [train, evaluate, lab, gradcheck, parity, graph, convert, bench, tune]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minires",
        description="minires: teach, measure and verify backprop through residual networks.")
    parser.add_argument("--version", action="version", version=f"minires {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the library's log messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return args.run(args)
    except BrokenPipeError:  # `minires ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except USER_FAULTS as exc:  # the one place a user's fault becomes one line on stderr
        return fail(getattr(args, "experiment", None) or args.command, describe(exc))
