"""Argument checks shared by the sliding-window ops (conv2d, pooling): NCHW inputs, (height, width) pairs,
and windows that fit the padded input. They run before any kernel, so bad input never reaches one."""
import numbers

from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from ..kernels.im2col import conv_out_size


def check_nchw(op, x, what="input"):
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected a 4-D {what} (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: expected a floating-point {what}, got dtype {x.dtype}")


def pair(op, name, value, minimum):
    """An int or a pair of ints as (height, width), each at least ``minimum``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise ArgumentTypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ArgumentError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def output_size(op, shape, kernel, stride, padding, dilation=(1, 1)):
    """(OH, OW) of a window sliding over the last two axes of ``shape``; a ShapeError if it does not fit."""
    h, w = shape[-2:]
    oh = conv_out_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = conv_out_size(w, kernel[1], stride[1], padding[1], dilation[1])
    if oh < 1 or ow < 1:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ShapeError(f"{op}: the {span[0]}x{span[1]} window (kernel {kernel[0]}x{kernel[1]}, dilation "
                         f"{dilation[0]}x{dilation[1]}) is larger than the padded input "
                         f"{h + 2 * padding[0]}x{w + 2 * padding[1]} (input {h}x{w}, padding {padding})")
    return oh, ow
