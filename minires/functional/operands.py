"""Turning the non-Tensor operands of an op (Python numbers, arrays) into Tensors."""
import numbers

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor


def as_tensor(value, like):
    """``value`` as a Tensor that does not require grad, placed on ``like``'s device.

    A Python number takes ``like``'s dtype (as in PyTorch, ``x * 2`` keeps x's dtype; see ``promote`` for
    the cases where the tensor's dtype must widen first); an array keeps its own dtype, so mixing a float64
    array into float32 math is caught as a dtype mismatch.
    """
    if isinstance(value, Tensor):
        return value
    xp = backend.get_array_module(like.array)
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return Tensor._make(xp.asarray(value, dtype=like.dtype))
    return Tensor(value, device=like.device)


def promote(tensor, number):
    """PyTorch's rule for a tensor beside a Python number: an integer or boolean tensor with a float becomes
    the default float dtype (float32), a boolean one with an int becomes int64; otherwise the tensor's dtype
    wins. (Two tensors of different dtypes are never promoted: that stays an error.)"""
    kind = tensor.dtype.kind
    if isinstance(number, numbers.Real) and not isinstance(number, numbers.Integral) and kind in "biu":
        return tensor.astype(np.float32)
    if isinstance(number, numbers.Integral) and not isinstance(number, bool) and kind == "b":
        return tensor.astype(np.int64)
    return tensor


def not_implemented(op, **given):
    """Raise for a torch argument minires accepts only at its default: ``given`` maps name -> (value, default)."""
    for name, (value, default) in given.items():
        if default is None:
            same = value is None
        elif isinstance(value, (tuple, list)):
            same = all(isinstance(v, (int, float)) and v == default for v in value)
        else:
            same = isinstance(value, (bool, int, float, str)) and value == default
        if not same:
            raise ArgumentError(f"{op}: minires does not implement {name}={value if default is not None else '...'} yet "
                                f"(only {name}={default!r})")


def check_is_tensor(op, value, what="input"):
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{op}: expected a Tensor as {what}, got {type(value).__name__}")
    return value
