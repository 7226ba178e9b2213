"""Sorting along an axis: sort and topk return (values, indices) as torch does. The values are picked from x
by the indices, so their gradient goes back to the picked places (and nowhere else)."""
from collections import namedtuple

from .. import backend
from ..errors import ArgumentError
from ..function import Function
from ..tensor import Tensor
from .axes import normalize_axis

SortResult = namedtuple("SortResult", ["values", "indices"])  # torch.return_types.sort
TopkResult = namedtuple("TopkResult", ["values", "indices"])


class TakeAlongAxis(Function):
    """y = x picked at ``indices`` along ``axis`` (numpy.take_along_axis); dx scatters g back there."""
    name = "take_along_axis"

    def forward(self, x, indices, axis):
        self.indices, self.axis, self.shape = indices, axis, x.shape
        return backend.get_array_module(x).take_along_axis(x, indices, axis=axis)

    def backward(self, g):
        xp = backend.get_array_module(g)
        dx = xp.zeros(self.shape, dtype=g.dtype)
        xp.put_along_axis(dx, self.indices, g, axis=self.axis)  # sort and topk pick each place at most once
        return dx


def sort(input, dim=-1, descending=False, stable=False):
    x = input
    axis = normalize_axis("sort", dim, x.ndim)
    order = _order(x.array, axis, descending)
    return SortResult(TakeAlongAxis.apply(x, indices=order, axis=axis), Tensor._make(order))


def topk(input, k, dim=None, largest=True, sorted=True):
    """The k largest (or smallest) values along ``dim`` (the last axis by default) and where they are,
    largest first."""
    x = input
    axis = normalize_axis("topk", -1 if dim is None else dim, x.ndim)
    if not 0 <= k <= x.shape[axis]:
        raise ArgumentError(f"topk: k={k} is out of range for an axis of size {x.shape[axis]}")
    xp = backend.get_array_module(x.array)
    order = xp.take(_order(x.array, axis, descending=largest), range(k), axis=axis)
    return TopkResult(TakeAlongAxis.apply(x, indices=order, axis=axis), Tensor._make(order))


def _order(array, axis, descending):
    """Indices that sort ``array`` along ``axis`` (stable: equal values keep their order)."""
    xp = backend.get_array_module(array)
    if descending:
        flipped = xp.flip(array, axis=axis)  # stable on the flipped array, flipped back: ties stay in order
        order = xp.flip(xp.argsort(flipped, axis=axis, kind="stable"), axis=axis)
        return (array.shape[axis] - 1 - order).astype(xp.int64)
    return xp.argsort(array, axis=axis, kind="stable").astype(xp.int64)
