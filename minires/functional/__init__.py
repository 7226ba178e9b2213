"""The differentiable ops of minires (``import minires.functional as F``).

One file per op family; in each, a Function subclass per op with forward() and backward() side by side,
and the lowercase function users call.
"""
from .arithmetic import add, div, mul, neg, pow, rpow, sub
from .batchnorm import batch_norm
from .batchnorm_relu import batch_norm_relu
from .conv import conv2d
from .conversion import astype, clone, contiguous, to_device
from .linalg import linear, matmul
from .dropout import dropout
from .loss import cross_entropy, mse_loss
from .pointwise import abs, clamp, exp, log, relu, sigmoid, sqrt, tanh
from .pooling import adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, max_pool2d
from .reduction import argmax, argmin, max, mean, min, sum
from .residual import residual_add, shortcut_a
from .shape import (cat, copy_into, expand, flatten, getitem, index_put, pad, repeat, reshape, squeeze, stack, swapaxes,
                    transpose, unsqueeze)
from .sorting import sort, topk
from .softmax import log_softmax, softmax
from .sync_batchnorm import sync_batch_norm

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "rpow", "exp", "log", "sqrt", "relu", "sigmoid", "tanh",
    "abs", "clamp", "clone", "sum", "mean", "max", "min", "argmax", "argmin", "sort", "topk",
    "reshape", "transpose", "swapaxes", "flatten", "getitem", "index_put", "copy_into", "cat", "stack", "pad", "expand",
    "repeat", "squeeze", "unsqueeze",
    "matmul", "linear", "log_softmax", "softmax", "cross_entropy", "mse_loss", "dropout", "astype", "to_device",
    "contiguous",
    "conv2d", "batch_norm", "batch_norm_relu", "sync_batch_norm", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "global_avg_pool2d",
    "residual_add", "shortcut_a",
]


def __getattr__(name):
    from ..missing import missing
    raise missing("torch.nn.functional", name)
