"""Ops that move values around without arithmetic: reshape, transpose, flatten, indexing, cat, pad.
Their backward moves the gradient back the same way."""
import numbers

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError, IndexOutOfRangeError, ShapeError
from ..function import Function
from ..tensor import Tensor
from .axes import axis_argument, normalize_axis
from .broadcast import sum_to_shape
from .conversion import astype


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


def flatten(input, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one (all of them by default, as torch.flatten; nn.Flatten and the
    models pass start_dim=1 to keep the batch axis)."""
    x = input
    start = normalize_axis("flatten", start_dim, x.ndim)
    end = normalize_axis("flatten", end_dim, x.ndim)
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


def getitem(x, index):
    """NumPy indexing: ints, slices, None, Ellipsis, and integer or boolean index arrays."""
    return GetItem.apply(x, index=_unwrap_index(index))


def cat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing axis (``dim``, or NumPy's ``axis=``); all other sizes must agree."""
    axis = axis_argument("cat", axis, None if axis is not None and dim == 0 else dim, default=0)
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


PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad: ``pad`` lists (before, after) pairs starting from the LAST axis, e.g.
    (1, 1, 2, 2) pads the last axis by 1 and the one before it by 2 on each side. ``mode`` is "constant"
    (with ``value``, default 0), "reflect" (mirror without the edge), "replicate" (repeat the edge) or
    "circular" (wrap around). A negative size crops, as torch allows."""
    x, pad = input, tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: expected an even number of pad sizes, at most 2 per axis of the {x.ndim}-D "
                         f"input, got {pad}")
    if any(not isinstance(p, numbers.Integral) or isinstance(p, bool) for p in pad):
        raise ArgumentTypeError(f"pad: pad sizes must be ints, got {pad}")
    if mode not in PAD_MODES:
        raise ArgumentError(f"pad: unknown mode {mode!r}; expected one of {tuple(PAD_MODES)}")
    if mode != "constant" and value not in (None, 0):
        raise ArgumentError(f"pad: a value is only used by mode 'constant', not {mode!r}")
    pairs = [(int(pad[i]), int(pad[i + 1])) for i in range(0, len(pad), 2)][::-1]
    widths = [(0, 0)] * (x.ndim - len(pairs)) + pairs
    if any(b < 0 or a < 0 for b, a in widths):  # negative sizes crop first
        x = getitem(x, tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(widths, x.shape)))
        widths = [(max(b, 0), max(a, 0)) for b, a in widths]
    for (before, after), n in zip(widths, x.shape):
        if mode == "reflect" and (before >= n or after >= n):
            raise ShapeError(f"pad: reflect padding ({before}, {after}) must be smaller than the axis ({n})")
        if mode != "constant" and n == 0 and before + after:
            raise ShapeError(f"pad: {mode} padding needs a non-empty axis")
    if mode == "constant":
        return Pad.apply(x, widths=tuple(widths), value=0.0 if value is None else value)
    return PadByIndex.apply(x, widths=tuple(widths), mode=PAD_MODES[mode])


class PadByIndex(Function):
    """reflect / replicate / circular padding: each output position along a padded axis copies one input
    position (np.pad of the positions 0..n-1 says which); the gradient adds back to that position. One
    selection matrix per padded axis, so forward and backward are a matrix product each."""
    name = "pad"

    def forward(self, x, widths, mode):
        xp = backend.get_array_module(x)
        self.selections = []
        for axis, ((before, after), n) in enumerate(zip(widths, x.shape)):
            if before or after:
                source = np.pad(np.arange(n), (before, after), mode=mode)
                select = np.zeros((len(source), n), dtype=x.dtype)
                select[np.arange(len(source)), source] = 1
                self.selections.append((axis, xp.asarray(select)))
        for axis, select in self.selections:
            x = xp.moveaxis(xp.moveaxis(x, axis, -1) @ select.T, -1, axis)
        return xp.ascontiguousarray(x)

    def backward(self, g):
        xp = backend.get_array_module(g)
        for axis, select in reversed(self.selections):
            g = xp.moveaxis(xp.moveaxis(g, axis, -1) @ select, -1, axis)
        return xp.ascontiguousarray(g)


def stack(tensors, dim=0, *, axis=None):
    """Join tensors of one shape along a new axis (torch.stack)."""
    tensors = list(tensors)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise ArgumentTypeError("stack: expected a non-empty sequence of Tensors")
    if any(tuple(t.shape) != tuple(tensors[0].shape) for t in tensors):
        raise ShapeError(f"stack: every tensor must have the same shape, got {[tuple(t.shape) for t in tensors]}")
    axis = normalize_axis("stack", axis_argument("stack", axis, dim, 0), tensors[0].ndim + 1)
    return cat([unsqueeze(t, axis) for t in tensors], axis=axis)


def swapaxes(x, dim0, dim1):
    """torch's ``transpose(x, dim0, dim1)``: swap two axes."""
    axes = list(range(x.ndim))
    a, b = normalize_axis("transpose", dim0, x.ndim), normalize_axis("transpose", dim1, x.ndim)
    axes[a], axes[b] = axes[b], axes[a]
    return Transpose.apply(x, axes=tuple(axes))


def squeeze(x, dim=None):
    """Drop axes of size 1 (only ``dim`` when given; an axis whose size is not 1 stays, as in torch)."""
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        axis = normalize_axis("squeeze", dim, x.ndim)
        shape = tuple(n for i, n in enumerate(x.shape) if i != axis or n != 1)
    return x if shape == tuple(x.shape) else Reshape.apply(x, shape=shape)


def unsqueeze(x, dim):
    """Insert an axis of size 1 at ``dim`` (counted in the result, as torch)."""
    axis = normalize_axis("unsqueeze", dim, x.ndim + 1)
    return Reshape.apply(x, shape=tuple(x.shape[:axis]) + (1,) + tuple(x.shape[axis:]))


class Expand(Function):
    """A broadcast view (no copy, read-only as torch's expanded tensors are for in-place writes); the
    gradient sums over the stretched axes."""
    name = "expand"

    def forward(self, x, shape):
        self.in_shape = x.shape
        return backend.get_array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        return sum_to_shape(g, self.in_shape)


def expand(x, sizes):
    """torch's ``expand``: stretch axes of size 1 to ``sizes`` (-1 keeps an axis); new axes go in front."""
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) < x.ndim:
        raise ShapeError(f"expand: {sizes} has fewer axes than the tensor's shape {tuple(x.shape)}")
    lead = len(sizes) - x.ndim
    shape = tuple(n if (i < lead or n != -1) else x.shape[i - lead] for i, n in enumerate(sizes))
    for i, n in enumerate(x.shape):
        if n != 1 and shape[lead + i] != n:
            raise ShapeError(f"expand: axis {i} of size {n} cannot be expanded to {sizes[lead + i]} "
                             f"(only axes of size 1 can), tensor shape {tuple(x.shape)}")
    return Expand.apply(x, shape=shape)


class Repeat(Function):
    """torch's ``repeat`` (numpy.tile): the tensor copied ``reps`` times along each axis; the gradient of
    each element is the sum over its copies."""
    name = "repeat"

    def forward(self, x, reps):
        self.in_shape = x.shape
        return backend.get_array_module(x).tile(x, reps)

    def backward(self, g):
        shape = (1,) * (len(g.shape) - len(self.in_shape)) + tuple(self.in_shape)
        split = []  # (copies, size) per axis: sum over the copies
        for r_size, n in zip(g.shape, shape):
            split += [r_size // n, n]
        return g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(self.in_shape)


def repeat(x, reps):
    reps = tuple(int(r) for r in reps)
    if len(reps) < x.ndim or any(r < 0 for r in reps):
        raise ShapeError(f"repeat: expected at least {x.ndim} non-negative repeat counts, got {reps}")
    return Repeat.apply(x, reps=reps)


class IndexPut(Function):
    """``x[index] = value`` out of place: the result, and gradients for both (x's at the written places
    is zero; value's is what reached those places, summed back to value's shape)."""
    name = "index_put"

    def forward(self, x, value, index):
        self.index, self.value_shape = index, value.shape
        out = x.copy(order="K")
        out[index] = value
        return out

    def backward(self, g):
        need_x, need_value = self.needs_input_grad
        dx = None
        if need_x:
            dx = g.copy()
            dx[self.index] = 0
        dvalue = sum_to_shape(g[self.index], self.value_shape) if need_value else None
        return dx, dvalue


def index_put(x, index, value):
    value = value if isinstance(value, Tensor) else Tensor(value, dtype=x.dtype, device=x.device)
    return IndexPut.apply(x, astype(value, x.dtype) if value.dtype != x.dtype else value,
                          index=_unwrap_index(index))


def copy_into(x, source):
    """What ``x.copy_(source)`` writes: source cast to x's dtype and broadcast to x's shape."""
    source = source if isinstance(source, Tensor) else Tensor(source, device=x.device)
    if source.device != x.device:
        source = source.to(x.device)
    return expand(astype(source, x.dtype), x.shape)


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, tuple):
        return tuple(i.array if isinstance(i, Tensor) else i for i in index)
    return index


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, numbers.Integral)) for p in parts)
