"""Argument checks shared by the sliding-window ops (conv2d, pooling) and the layers that hold their
arguments: NCHW inputs, (height, width) pairs, windows that fit the padded input, channel groups. Each rule is
written once here; they run before any kernel, so bad input never reaches one. ``sliding_window`` normalises a
window's arguments and computes its output size once; the Function and its kernels receive the result."""
import numbers

from ..errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from ..kernels.im2col import Window, conv_out_size


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


def sliding_window(op, shape, kernel, stride, padding, dilation=1):
    """The Window of an op over inputs of ``shape``: each argument an int or a (height, width) pair; a
    ShapeError when the window does not fit the padded input."""
    kernel = pair(op, "kernel_size", kernel, 1)
    stride, padding = pair(op, "stride", stride, 1), pair(op, "padding", padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    h, w = shape[-2:]
    out = tuple(conv_out_size(size, *args) for size, *args in zip((h, w), kernel, stride, padding, dilation))
    if min(out) < 1:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ShapeError(f"{op}: the {span[0]}x{span[1]} window (kernel {kernel[0]}x{kernel[1]}, dilation "
                         f"{dilation[0]}x{dilation[1]}) is larger than the padded input "
                         f"{h + 2 * padding[0]}x{w + 2 * padding[1]} (input {h}x{w}, padding {padding})")
    return Window(kernel, stride, padding, dilation, out)


def check_groups(op, groups, in_channels, out_channels):
    """groups must be a positive int dividing both channel counts (a convolution's layer and its op)."""
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ArgumentError(f"{op}: groups must be a positive int, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise ShapeError(f"{op}: groups={groups} must divide both the input channels ({in_channels}) and the "
                         f"output channels ({out_channels})")
