"""Turning the non-Tensor operands of an op (Python numbers, arrays) into Tensors."""
import numbers

from .. import backend
from ..errors import ArgumentTypeError
from ..tensor import Tensor


def as_tensor(value, like):
    """``value`` as a Tensor that does not require grad, placed on ``like``'s device.

    A Python number takes ``like``'s floating dtype (as in PyTorch, ``x * 2`` keeps x's dtype); an array keeps
    its own dtype, so mixing a float64 array into float32 math is caught as a dtype mismatch.
    """
    if isinstance(value, Tensor):
        return value
    xp = backend.get_array_module(like.data)
    if isinstance(value, numbers.Number) and not isinstance(value, bool) and like.dtype.kind == "f":
        return Tensor._make(xp.asarray(value, dtype=like.dtype))
    return Tensor(value, device=like.device)


def check_is_tensor(op, value, what="input"):
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{op}: expected a Tensor as {what}, got {type(value).__name__}")
    return value
