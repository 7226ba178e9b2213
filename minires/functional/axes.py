"""Checking the axis arguments of reductions and shape ops."""
import numbers

from ..errors import ArgumentTypeError, ShapeError


def normalize_axis(op, axis, ndim):
    """One axis as a non-negative int, or a ShapeError naming the op and the tensor's rank."""
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise ArgumentTypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{op}: axis {axis} is out of range for a {ndim}-D tensor")
    return int(axis) % ndim


def normalize_axes(op, axis, ndim):
    """``axis`` (None, an int or a tuple of ints) as a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(normalize_axis(op, a, ndim) for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: axis {axis} repeats an axis")
    return tuple(sorted(axes))
