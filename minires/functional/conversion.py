"""Changing a tensor's dtype or device, differentiably (the gradient goes back the other way)."""
import numpy as np

from .. import backend
from .. import memory_format as memory_format_rules
from ..errors import DTypeError
from ..function import Function


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
    dtype = np.dtype(dtype)
    if x.requires_grad and dtype.kind != "f":
        raise DTypeError(f"astype: a tensor that requires grad can only become a floating dtype, not {dtype}")
    if dtype == x.dtype:
        return x
    return AsType.apply(x, dtype=dtype)


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
    if memory_format == memory_format_rules.preserve_format or memory_format_rules.is_in_format(x.data, memory_format):
        return x
    return Contiguous.apply(x, memory_format=memory_format)
