"""Memory formats, as torch names them: shapes are always NCHW, but a 4-D array's memory may be NCHW
("contiguous_format") or NHWC ("channels_last": a transposed view of a C-contiguous (N, H, W, C) array).

The fast CPU convolutions (kernels/direct/) want channels-last end to end, so every op keeps the
layout of its input; a network converted once (``model.to(memory_format=mr.channels_last)`` and
``x.contiguous(memory_format=mr.channels_last)``) stays channels-last through forward and backward. Changing
layout is a copy, and an op of its own (``contiguous``), so the profiler shows every conversion.
"""
import threading

from . import backend
from .errors import ArgumentError

contiguous_format = "contiguous_format"
channels_last = "channels_last"
preserve_format = "preserve_format"
FORMATS = (contiguous_format, channels_last, preserve_format)


class _Conversions(threading.local):
    """Copies from one memory format to the other on this thread, for the profiler (never a silent cost)."""
    count = 0
    bytes = 0

    def record(self, array):
        self.count += 1
        self.bytes += array.nbytes


conversions = _Conversions()


def check(memory_format):
    if memory_format not in FORMATS:
        raise ArgumentError(f"memory_format must be one of {', '.join(map(repr, FORMATS))}, got {memory_format!r}")
    return memory_format


def is_channels_last(array):
    """True for a 4-D array whose memory is NHWC (an array whose C or H W axes have size 1 is both)."""
    return array.ndim == 4 and array.transpose(0, 2, 3, 1).flags.c_contiguous


def only_channels_last(array):
    """True for a 4-D array whose memory is NHWC and not also NCHW: the arrays the channels-last kernels take."""
    return is_channels_last(array) and not array.flags.c_contiguous


def nhwc(array):
    """The (N, H, W, C) C-contiguous array under a 4-D array (a view when it is already channels-last)."""
    memory = array.transpose(0, 2, 3, 1)
    if memory.flags.c_contiguous:
        return memory
    conversions.record(array)
    return backend.get_array_module(array).ascontiguousarray(memory)


def nchw_view(array_nhwc):
    """The NCHW-shaped view of an (N, H, W, C) array: what a channels-last tensor holds."""
    return array_nhwc.transpose(0, 3, 1, 2)


def pixel_matrix(array):
    """The (N H W, C) matrix of a 4-D array's NHWC memory, one row per pixel (a view when channels-last)."""
    return nhwc(array).reshape(-1, array.shape[1])


def from_pixel_matrix(matrix, shape):
    """The channels-last (N, C, H, W) array of ``shape`` whose pixel matrix is ``matrix``."""
    n, c, h, w = shape
    return nchw_view(matrix.reshape(n, h, w, c))


def to_format(array, memory_format):
    """The array in ``memory_format`` (itself when it already is)."""
    if memory_format == channels_last:
        if array.ndim != 4:
            raise ArgumentError(f"channels_last needs a 4-D (N, C, H, W) tensor, got shape {tuple(array.shape)}")
        return nchw_view(nhwc(array))
    if memory_format == contiguous_format and not array.flags.c_contiguous:
        conversions.record(array)
        return backend.get_array_module(array).ascontiguousarray(array)
    return array


def is_in_format(array, memory_format):
    if memory_format == channels_last:
        return is_channels_last(array)
    return array.flags.c_contiguous


class Layout:
    """How an op's kernels see its 4-D arrays: ``memory(a)`` is what a kernel computes on (the NHWC array
    under a channels-last tensor, else the array itself), ``tensor(m)`` turns a kernel's result back into
    an NCHW-shaped array of the same layout. ``Layout.of(x)`` follows x."""

    def __init__(self, channels_last):
        self.channels_last = channels_last

    @classmethod
    def of(cls, array):
        return cls(only_channels_last(array))

    def memory(self, array):
        return nhwc(array) if self.channels_last else array

    def tensor(self, memory):
        return nchw_view(memory) if self.channels_last else memory

    # for kernels written for NCHW memory only (pooling): a copy each way, counted as a conversion
    def nchw(self, array):
        return to_format(array, contiguous_format) if self.channels_last else array

    def restore(self, array):
        return to_format(array, channels_last) if self.channels_last else array

