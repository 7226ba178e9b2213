"""Checking the axis arguments of reductions and shape ops. NumPy's ``axis=``/``keepdims=`` and PyTorch's
``dim=``/``keepdim=`` are both accepted wherever an op takes an axis; giving both names is an error."""
import numbers

from ..errors import ArgumentError, ArgumentTypeError, ShapeError


def axis_argument(op, axis, dim, default=None):
    """The axis a user asked for, by either name (``axis`` as NumPy, ``dim`` as PyTorch)."""
    if dim is not None and axis is not None:
        raise ArgumentError(f"{op}: give axis= or dim= (the same thing), not both")
    chosen = dim if dim is not None else axis
    return default if chosen is None else chosen


def keepdims_argument(op, keepdims, keepdim):
    """keepdims (NumPy) or keepdim (PyTorch); both given and different is an error."""
    if keepdim is not None and keepdims and not keepdim:
        raise ArgumentError(f"{op}: give keepdims= or keepdim= (the same thing), not both")
    return bool(keepdims or keepdim)


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
