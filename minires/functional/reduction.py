"""Reductions over axes: sum, mean, max, min (axis=None, an int or a tuple; keepdims like NumPy; dim= and
keepdim= as PyTorch), and argmax, argmin. ``max(x, d)`` and ``max(x, dim=d)`` return (values, indices) as
torch.max does; with ``axis=`` they return the values alone, as NumPy's max and torch.amax do."""
from collections import namedtuple

from .. import backend
from ..errors import ArgumentError
from ..function import Function
from ..tensor import Tensor
from .axes import axis_argument, keepdims_argument, normalize_axes, normalize_axis

MaxResult = namedtuple("MaxResult", ["values", "indices"])  # torch.return_types.max
MinResult = namedtuple("MinResult", ["values", "indices"])


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
        y = getattr(x, self.name)(axis=axes, keepdims=True)
        winners = x == y
        self.save_for_backward(winners / winners.sum(axis=axes, keepdims=True).astype(x.dtype))
        return y if keepdims else y.squeeze(axis=axes)

    def backward(self, g):
        (share,) = self.saved_tensors
        return share * _spread(g, self.axes, self.keepdims, share.shape)


class Min(Max):
    """The gradient goes to the minimal element; ties share it equally (like torch.amin)."""
    name = "min"


def _reduce(fn, x, axis, keepdims):
    axes = normalize_axes(fn.name, axis, x.ndim)
    if fn in (Max, Min) and any(x.shape[a] == 0 for a in axes):
        raise ArgumentError(f"{fn.name}: cannot reduce over an empty axis (tensor of shape {x.shape})")
    return fn.apply(x, axes=axes, keepdims=bool(keepdims))


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """The sum over ``dim`` (torch) or ``axis`` (NumPy): None, an int or a tuple; in ``dtype`` if given."""
    x = input if dtype is None else input.to(dtype)
    return _reduce(Sum, x, axis_argument("sum", axis, dim), keepdims_argument("sum", keepdim, keepdims))


def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    x = input if dtype is None else input.to(dtype)
    return _reduce(Mean, x, axis_argument("mean", axis, dim), keepdims_argument("mean", keepdim, keepdims))


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The largest values. With a dim (positional or ``dim=``): (values, indices), as torch.max; with
    ``axis=`` or no axis: the values alone."""
    return _extreme(Max, MaxResult, "argmax", input, dim, keepdim, axis, keepdims)


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The smallest values; (values, indices) with a dim, as torch.min."""
    return _extreme(Min, MinResult, "argmin", input, dim, keepdim, axis, keepdims)


def _extreme(fn, result, arg, x, dim, keepdim, axis, keepdims):
    keep = keepdims_argument(fn.name, keepdim, keepdims)
    values = _reduce(fn, x, axis_argument(fn.name, axis, dim), keep)
    if dim is None:
        return values
    # the values and, without gradient, where they are (the first one on ties)
    return result(values, _arg(arg, x, dim, keep))


def argmax(input, dim=None, keepdim=False):
    """Where the largest value is: along ``dim``, or in the flattened tensor (dim=None), as torch.argmax."""
    return _arg("argmax", input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _arg("argmin", input, dim, keepdim)


def _arg(name, x, dim, keepdim):
    xp = backend.get_array_module(x.array)
    if x.numel() == 0:
        raise ArgumentError(f"{name}: the tensor is empty")
    if dim is None:
        return Tensor._make(xp.asarray(getattr(xp, name)(x.array), dtype=xp.int64))
    axis = normalize_axis(name, dim, x.ndim)
    indices = getattr(xp, name)(x.array, axis=axis).astype(xp.int64)
    return Tensor._make(xp.expand_dims(indices, axis) if keepdim else indices)
