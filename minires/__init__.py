"""minires: a from-scratch deep-learning engine for teaching, measuring and verifying backprop through
residual networks. ``import minires as mr`` — or, for a PyTorch program, ``import minires as torch``: the
names such a program uses (module tree, Tensor methods, dtypes, save/load) mirror torch's."""
from .version import __version__
from .tensor import Tensor, tensor
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .rng import manual_seed
from .memory_format import channels_last, contiguous_format, preserve_format
from .size import Size
from .backend import device
from .dtypes import (bool, double, float, float16, float32, float64, half, int, int8, int16, int32, int64, long,
                     short, uint8, is_floating_point)
from .factories import (arange, as_tensor, empty, from_numpy, full, is_tensor, linspace, numel, ones, ones_like,
                        rand, randint, randn, randperm, zeros, zeros_like)
from . import functional
from . import functional as F
from .functional import (abs, argmax, argmin, cat, clamp, clone, exp, flatten, log, log_softmax, matmul, max, mean,
                         min, relu, sigmoid, softmax, sort, sqrt, stack, sum, tanh, topk)
from .verify.gradcheck import GradcheckError, gradcheck, gradcheck_module
from . import autograd, backends, cuda, data, nn, models, optim, utils, viz
from .serialization import load, save
from .missing import missing as _missing

clip = clamp
eq = Tensor.eq
squeeze, unsqueeze = functional.squeeze, functional.unsqueeze

__all__ = [
    "__version__", "Tensor", "tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "inference_mode", "manual_seed", "channels_last", "contiguous_format", "preserve_format", "Size", "device",
    "float32", "float", "float64", "double", "float16", "half", "int64", "long", "int32", "int", "int16", "short",
    "int8", "uint8", "bool", "is_floating_point",
    "zeros", "ones", "full", "empty", "arange", "linspace", "randn", "rand", "randint", "randperm", "zeros_like",
    "ones_like", "as_tensor", "from_numpy", "is_tensor", "numel",
    "abs", "argmax", "argmin", "cat", "stack", "clamp", "clip", "clone", "exp", "flatten", "log", "log_softmax", "softmax", "matmul", "max",
    "mean", "min", "relu", "sigmoid", "sort", "sqrt", "sum", "tanh", "topk", "eq", "squeeze", "unsqueeze",
    "functional", "F", "gradcheck", "gradcheck_module", "GradcheckError", "autograd", "backends", "cuda", "nn",
    "models", "optim", "data", "utils", "viz", "save", "load",
]


def __getattr__(name):
    raise _missing("torch", name)
