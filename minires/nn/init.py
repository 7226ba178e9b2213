"""Weight initialisation, drawing from an explicit numpy Generator (the default one when none is given).

fan_in = in_channels/groups * KH * KW (or in_features), fan_out = out_channels * KH * KW (or out_features).
    kaiming_normal_:  N(0, gain^2 / fan)   with gain = sqrt(2) for ReLU            (He et al. 2015)
    xavier_normal_:   N(0, 2 / (fan_in + fan_out))                                 (Glorot & Bengio 2010)
    torch's default for Conv2d and Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
Each function fills the Tensor's array in place and returns the Tensor.
"""
import math

import numpy as np

from .. import backend
from ..errors import ArgumentError
from ..rng import as_generator

GAINS = {"relu": math.sqrt(2.0), "linear": 1.0, "tanh": 5.0 / 3.0, "sigmoid": 1.0}


def fans(shape):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel) or (out, in)."""
    if len(shape) < 2:
        raise ArgumentError(f"fans: a weight needs at least 2 axes, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor, values):
    tensor.data[...] = backend.to_device(values.astype(tensor.dtype), tensor.device)
    return tensor


def gain(nonlinearity):
    try:
        return GAINS[nonlinearity]
    except KeyError:
        raise ArgumentError(f"unknown nonlinearity {nonlinearity!r}; known: {sorted(GAINS)}") from None


def kaiming_normal_(tensor, mode="fan_in", nonlinearity="relu", rng=None):
    fan_in, fan_out = fans(tensor.shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out}[mode]
    std = gain(nonlinearity) / math.sqrt(fan)
    return _fill(tensor, as_generator(rng).normal(0.0, std, tensor.shape))


def xavier_normal_(tensor, gain_value=1.0, rng=None):
    fan_in, fan_out = fans(tensor.shape)
    std = gain_value * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, as_generator(rng).normal(0.0, std, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    return _fill(tensor, as_generator(rng).normal(mean, std, tensor.shape))


def uniform_(tensor, low, high, rng=None):
    return _fill(tensor, as_generator(rng).uniform(low, high, tensor.shape))


def constant_(tensor, value):
    tensor.data[...] = value
    return tensor


def torch_default_(weight, bias=None, rng=None):
    """PyTorch's default for Conv2d and Linear: U(+-1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5))."""
    bound = 1.0 / math.sqrt(fans(weight.shape)[0])
    uniform_(weight, -bound, bound, rng)
    if bias is not None:
        uniform_(bias, -bound, bound, rng)
