"""Paths given on the command line, expanded as a shell would have: ``~`` and ``$VARS``.

A shell expands ``~`` only at the start of a word, so ``--data cifar10:~/data`` and ``--out=~/runs`` reach
minires unexpanded; every path option goes through ``user_path`` (and data specs through
``minires.data.load``) so that both spellings work."""
import os


def user_path(text):
    return os.path.expanduser(os.path.expandvars(text))
