"""minires: a from-scratch deep-learning engine for teaching, measuring and verifying backprop through
residual networks. ``import minires as mr``."""
from .version import __version__
from .tensor import Tensor, tensor
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .rng import manual_seed
from .memory_format import channels_last, contiguous_format, preserve_format
from .factories import (arange, empty, full, linspace, ones, ones_like, rand, randint, randn, zeros,
                        zeros_like)
from . import functional
from . import functional as F
from .verify.gradcheck import GradcheckError, gradcheck, gradcheck_module
from . import data, nn, models, optim, viz
from .checkpoint import load, save

__all__ = [
    "__version__", "Tensor", "tensor", "no_grad", "enable_grad", "is_grad_enabled", "manual_seed",
    "channels_last", "contiguous_format", "preserve_format",
    "zeros", "ones", "full", "empty", "arange", "linspace", "randn", "rand", "randint", "zeros_like", "ones_like",
    "functional", "F", "gradcheck", "gradcheck_module", "GradcheckError", "nn", "models", "optim", "data", "viz", "save", "load",
]
