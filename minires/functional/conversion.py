"""Changing a tensor's dtype or device, differentiably (the gradient goes back the other way)."""
import numpy as np

from .. import backend
from .. import memory_format as memory_format_rules
from ..errors import DTypeError
from ..function import Function
from ..tensor import Tensor


class AsType(Function):
    name = "astype"

    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.in_dtype)


class ToDevice(Function):
    name = "to"

    def forward(self, x, device):
        self.in_device = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, g):
        return backend.to_device(g, self.in_device)


def astype(x, dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"astype: {dtype!r} is not a dtype (try minires.float32, minires.long, ...)") from None
    if dtype == x.dtype:
        return x
    if dtype.kind != "f":  # no gradient flows into integers or booleans: the result leaves the graph (torch too)
        return Tensor._make(x.array.astype(dtype))
    return AsType.apply(x, dtype=dtype)


class Clone(Function):
    """A copy with the same memory format; the gradient passes through (torch's ``clone``)."""
    name = "clone"

    def forward(self, x):
        return x.copy(order="K")

    def backward(self, g):
        return g


def clone(x):
    return Clone.apply(x)


def to_device(x, device):
    device = backend.normalize_device(device)
    if device == x.device:
        return x
    return ToDevice.apply(x, device=device)


class Contiguous(Function):
    """A copy into another memory format: the same values, so the gradient passes through unchanged."""
    name = "contiguous"

    def forward(self, x, memory_format):
        return memory_format_rules.to_format(x, memory_format)

    def backward(self, g):
        return g


def contiguous(x, memory_format=memory_format_rules.contiguous_format):
    """x with its memory in ``memory_format`` ("contiguous_format" or "channels_last"); x itself if it is."""
    memory_format_rules.check(memory_format)
    if memory_format == memory_format_rules.preserve_format or memory_format_rules.is_in_format(x.array, memory_format):
        return x
    return Contiguous.apply(x, memory_format=memory_format)
