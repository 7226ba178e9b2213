"""Reductions over axes: sum, mean, max (axis=None, an int or a tuple; keepdims like NumPy; dim= and
keepdim= as PyTorch). ``max(x, dim=d)`` returns (values, indices) as torch.max does; with ``axis=`` it
returns the values alone, as NumPy's max and torch.amax do."""
from collections import namedtuple

from .. import backend
from ..errors import ArgumentError
from ..function import Function
from ..tensor import Tensor
from .axes import axis_argument, keepdims_argument, normalize_axes, normalize_axis

MaxResult = namedtuple("MaxResult", ["values", "indices"])


def _spread(g, axes, keepdims, shape):
    """Broadcast a reduced gradient back over the axes it was reduced on (a read-only view, no copy)."""
    xp = backend.get_array_module(g)
    if not keepdims:
        g = xp.expand_dims(g, axes)
    return xp.broadcast_to(g, shape)


class Sum(Function):
    name = "sum"

    def forward(self, x, axes, keepdims):
        self.axes, self.keepdims, self.shape = axes, keepdims, x.shape
        return x.sum(axis=axes, keepdims=keepdims)

    def backward(self, g):
        return _spread(g, self.axes, self.keepdims, self.shape)  # d sum = 1 for every summed element


class Mean(Function):
    name = "mean"

    def forward(self, x, axes, keepdims):
        self.axes, self.keepdims, self.shape = axes, keepdims, x.shape
        self.count = 1
        for a in axes:
            self.count *= x.shape[a]
        return x.mean(axis=axes, keepdims=keepdims)

    def backward(self, g):
        return _spread(g / self.count, self.axes, self.keepdims, self.shape)  # d mean = 1/count


class Max(Function):
    """The gradient goes to the maximal element; ties share it equally (like torch.amax)."""
    name = "max"

    def forward(self, x, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims
        y = x.max(axis=axes, keepdims=True)
        winners = x == y
        self.save_for_backward(winners / winners.sum(axis=axes, keepdims=True).astype(x.dtype))
        return y if keepdims else y.squeeze(axis=axes)

    def backward(self, g):
        (share,) = self.saved_tensors
        return share * _spread(g, self.axes, self.keepdims, share.shape)


def _reduce(fn, x, axis, keepdims):
    axes = normalize_axes(fn.name, axis, x.ndim)
    if fn is Max and any(x.shape[a] == 0 for a in axes):
        raise ArgumentError(f"max: cannot reduce over an empty axis (tensor of shape {x.shape})")
    return fn.apply(x, axes=axes, keepdims=bool(keepdims))


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return _reduce(Sum, x, axis_argument("sum", axis, dim), keepdims_argument("sum", keepdims, keepdim))


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return _reduce(Mean, x, axis_argument("mean", axis, dim), keepdims_argument("mean", keepdims, keepdim))


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    keep = keepdims_argument("max", keepdims, keepdim)
    values = _reduce(Max, x, axis_argument("max", axis, dim), keep)
    if dim is None:
        return values
    # PyTorch's max(dim=d): the values and, without gradient, where they are (the first maximum on ties)
    indices = backend.get_array_module(x.data).argmax(x.data, axis=normalize_axis("max", dim, x.ndim))
    return MaxResult(values, Tensor._make(indices.reshape(values.shape) if keep else indices))
