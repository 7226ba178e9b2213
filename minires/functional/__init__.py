"""The differentiable ops of minires (``import minires.functional as F``).

One file per op family; in each, a Function subclass per op with forward() and backward() side by side,
and the lowercase function users call.
"""
from .arithmetic import add, div, mul, neg, pow, rpow, sub
from .conversion import astype, to_device
from .linalg import linear, matmul
from .loss import cross_entropy
from .pointwise import exp, log, relu, sigmoid, sqrt, tanh
from .reduction import max, mean, sum
from .shape import cat, flatten, getitem, pad, reshape, transpose
from .softmax import log_softmax, softmax

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "rpow", "exp", "log", "sqrt", "relu", "sigmoid", "tanh",
    "sum", "mean", "max", "reshape", "transpose", "flatten", "getitem", "cat", "pad",
    "matmul", "linear", "log_softmax", "softmax", "cross_entropy", "astype", "to_device",
]
