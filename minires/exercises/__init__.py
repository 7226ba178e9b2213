"""Exercises with automatic checking: write the forward and backward of an op, then let minires check them.

    import minires.exercises as ex
    ex.names()                        # relu, linear, residual_join, residual_block, batchnorm, conv2d, max_pool
    source = ex.template("batchnorm") # the two functions to write (as text), with what they take and return

    def batchnorm_forward(x, gamma, beta, eps=1e-5): ...
    def batchnorm_backward(dy, cache): ...

    ex.check("batchnorm", batchnorm_forward, batchnorm_backward)

``check`` compares the forward's output and every gradient with minires' own kernels, with torch (when it is
installed) and with float64 central differences of the learner's forward under a random upstream gradient,
and says which gradient is wrong, by how much, where (the first wrong element) and what to look at. The stubs
in ``minires.exercises.stubs`` raise "not implemented yet: write me"; ``solution(name)`` gives the reference
(minires' kernels, in minires/exercises/solutions.py) for a teacher.
"""
import inspect
import re

from ..errors import UnknownNameError
from . import solutions, stubs
from .catalog import EXERCISES
from .checker import Report, check
from .stubs import NotWrittenYet

__all__ = ["EXERCISES", "NotWrittenYet", "Report", "check", "names", "solution", "stub", "template"]


def names():
    """The exercises, in teaching order."""
    return list(EXERCISES)


def _pair(module, name):
    if name not in EXERCISES:
        raise UnknownNameError(f"no exercise named {name!r}; the exercises: {', '.join(EXERCISES)}")
    return getattr(module, f"{name}_forward"), getattr(module, f"{name}_backward")


def stub(name):
    """(forward, backward) as the learner starts them: both raise NotWrittenYet."""
    return _pair(stubs, name)


def solution(name):
    """(forward, backward) written with minires' reference kernels."""
    return _pair(solutions, name)


def template(name):
    """The source of the two stubs of exercise ``name``, ready to paste into a notebook cell and fill in."""
    source = "\n\n".join(inspect.getsource(f) for f in stub(name))
    source = re.sub(r'_write_me\("(\w+)"\)', r'raise NotWrittenYet("\1 is not implemented yet: write me")', source)
    return "import numpy as np\nfrom minires.exercises import NotWrittenYet\n\n\n" + source
