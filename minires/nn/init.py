"""Weight initialisation, drawing from an explicit numpy Generator (the default one when none is given).

fan_in = in_channels/groups * KH * KW (or in_features), fan_out = out_channels * KH * KW (or out_features).
    kaiming_normal_:  N(0, gain^2 / fan)   with gain = sqrt(2) for ReLU            (He et al. 2015)
    xavier_normal_:   N(0, 2 / (fan_in + fan_out))                                 (Glorot & Bengio 2010)
    torch's default for Conv2d and Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
Each function fills the Tensor's array in place and returns the Tensor; names, arguments and defaults are
torch.nn.init's (``generator=`` a numpy Generator or seed; minires' own code passes ``rng=``).
"""
import math

import numpy as np

from .. import backend
from ..errors import ArgumentError
from ..rng import as_generator

GAINS = {"relu": math.sqrt(2.0), "linear": 1.0, "tanh": 5.0 / 3.0, "sigmoid": 1.0, "conv2d": 1.0}


def fans(shape):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel) or (out, in)."""
    if len(shape) < 2:
        raise ArgumentError(f"fans: a weight needs at least 2 axes, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor, values):
    tensor.array[...] = backend.to_device(np.asarray(values).astype(tensor.dtype), tensor.device)
    return tensor


def calculate_gain(nonlinearity, param=None):
    """torch's gains: sqrt(2) for relu, sqrt(2 / (1 + a^2)) for leaky_relu with slope a, 5/3 for tanh, 1 else."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    try:
        return GAINS[nonlinearity]
    except KeyError:
        raise ArgumentError(f"unknown nonlinearity {nonlinearity!r}; known: {sorted(GAINS) + ['leaky_relu']}") \
            from None


gain = calculate_gain


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan_in, fan_out = fans(tensor.shape)
    if mode not in ("fan_in", "fan_out"):
        raise ArgumentError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, rng=None):
    """N(0, std^2), std = gain / sqrt(fan) (He et al. 2015); torch's signature and defaults."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return _fill(tensor, as_generator(generator or rng).normal(0.0, std, tensor.shape))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, rng=None):
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return _fill(tensor, as_generator(generator or rng).uniform(-bound, bound, tensor.shape))


def xavier_normal_(tensor, gain=1.0, generator=None, *, rng=None):
    fan_in, fan_out = fans(tensor.shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, as_generator(generator or rng).normal(0.0, std, tensor.shape))


def xavier_uniform_(tensor, gain=1.0, generator=None, *, rng=None):
    fan_in, fan_out = fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, as_generator(generator or rng).uniform(-bound, bound, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None, *, rng=None):
    return _fill(tensor, as_generator(generator or rng).normal(mean, std, tensor.shape))


def uniform_(tensor, a=0.0, b=1.0, generator=None, *, rng=None):
    return _fill(tensor, as_generator(generator or rng).uniform(a, b, tensor.shape))


def constant_(tensor, val):
    tensor.array[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def torch_default_(weight, bias=None, rng=None):
    """PyTorch's default for Conv2d and Linear: U(+-1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5))."""
    bound = 1.0 / math.sqrt(fans(weight.shape)[0])
    uniform_(weight, -bound, bound, rng=rng)
    if bias is not None:
        uniform_(bias, -bound, bound, rng=rng)
