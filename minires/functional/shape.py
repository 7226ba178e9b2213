"""Ops that move values around without arithmetic: reshape, transpose, flatten, indexing, cat, pad.
Their backward moves the gradient back the same way."""
import numbers

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError, IndexOutOfRangeError, ShapeError
from ..function import Function
from ..tensor import Tensor
from .axes import axis_argument, normalize_axis


class Reshape(Function):
    name = "reshape"

    def forward(self, x, shape):
        self.in_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Transpose(Function):
    name = "transpose"

    def forward(self, x, axes):
        self.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    def backward(self, g):
        return g.transpose(self.inverse)


class GetItem(Function):
    name = "getitem"

    def forward(self, x, index):
        self.index, self.shape = index, x.shape
        try:
            return x[index]
        except IndexError as exc:
            raise IndexOutOfRangeError(f"getitem: index {index!r} does not fit a tensor of shape {x.shape}: {exc}") from None

    def backward(self, g):
        xp = backend.get_array_module(g)
        grad = xp.zeros(self.shape, dtype=g.dtype)
        if _is_basic_index(self.index):
            grad[self.index] = g  # basic indexing picks each element at most once
        else:
            xp.add.at(grad, self.index, g)  # an index array may pick an element twice: add, do not overwrite
        return grad


class Cat(Function):
    name = "cat"

    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = tuple(int(b) for b in np.cumsum([a.shape[axis] for a in arrays])[:-1])
        return backend.get_array_module(arrays[0]).concatenate(arrays, axis=axis)

    def backward(self, g):
        pieces = backend.get_array_module(g).split(g, self.bounds, axis=self.axis)
        return tuple(p if need else None for p, need in zip(pieces, self.needs_input_grad))


class Pad(Function):
    name = "pad"

    def forward(self, x, widths, value):
        self.inner = tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))
        return backend.get_array_module(x).pad(x, widths, mode="constant", constant_values=value)

    def backward(self, g):
        return g[self.inner]


def reshape(x, shape):
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(int(n) for n in shape)
    known = int(np.prod([n for n in shape if n != -1]))
    fits = (shape.count(-1) == 0 and known == x.numel()) or (
        shape.count(-1) == 1 and known > 0 and x.numel() % known == 0)
    if not fits or any(n < -1 for n in shape):
        raise ShapeError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.numel()} elements) into {shape}")
    return Reshape.apply(x, shape=shape)


def transpose(x, axes=None):
    """Permute axes (reverse them when ``axes`` is empty or None), like numpy.transpose."""
    if not axes:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(normalize_axis("transpose", a, x.ndim) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of {x.shape}")
    return Transpose.apply(x, axes=axes)


def flatten(x, start_dim=1, end_dim=-1):
    """Merge axes start_dim..end_dim into one. The default keeps the batch axis, as nn.Flatten does."""
    start = normalize_axis("flatten", start_dim, x.ndim)
    end = normalize_axis("flatten", end_dim, x.ndim)
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def getitem(x, index):
    """NumPy indexing: ints, slices, None, Ellipsis, and integer or boolean index arrays."""
    return GetItem.apply(x, index=_unwrap_index(index))


def cat(tensors, axis=None, *, dim=None):
    """Join tensors along an existing axis (``axis`` or ``dim``, default 0); all other sizes must agree."""
    axis = axis_argument("cat", axis, dim, default=0)
    tensors = list(tensors)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise ArgumentTypeError("cat: expected a non-empty sequence of Tensors")
    first = tensors[0]
    if first.ndim == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated")
    axis = normalize_axis("cat", axis, first.ndim)
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ShapeError(f"cat: shapes {first.shape} and {t.shape} differ outside axis {axis}")
    return Cat.apply(*tensors, axis=axis)


def pad(x, pad, value=0.0):
    """Constant padding, PyTorch's convention: ``pad`` lists (before, after) pairs starting from the LAST
    axis, e.g. (1, 1, 2, 2) pads the last axis by 1 and the one before it by 2 on each side."""
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: expected an even number of pad sizes, at most 2 per axis of the {x.ndim}-D "
                         f"input, got {pad}")
    if any((not isinstance(p, numbers.Integral)) or p < 0 for p in pad):
        raise ArgumentError(f"pad: pad sizes must be non-negative ints, got {pad}")
    pairs = [(int(pad[i]), int(pad[i + 1])) for i in range(0, len(pad), 2)]
    widths = [(0, 0)] * (x.ndim - len(pairs)) + pairs[::-1]
    return Pad.apply(x, widths=tuple(widths), value=value)


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, numbers.Integral)) for p in parts)
