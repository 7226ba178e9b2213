"""Pooling over the H x W planes of NCHW inputs: max_pool2d, avg_pool2d (count_include_pad, PyTorch's
default), adaptive_avg_pool2d and global_avg_pool2d. Output sizes follow conv_out_size:
OH = floor((H + 2 padding - kernel) / stride) + 1."""
from .. import backend, kernels
from ..errors import ArgumentError, ShapeError
from ..function import Function
from .window import check_nchw, output_size, pair


class MaxPool2d(Function):
    name = "max_pool2d"

    def forward(self, x, kernel, stride, padding):
        self.in_shape = x.shape
        y, self.argmax = kernels.pick("max_pool_forward", backend.get_array_module(x))(x, *kernel, *stride, *padding)
        return y

    def backward(self, g):
        h, w = self.in_shape[2:]
        return kernels.pick("max_pool_backward", backend.get_array_module(g))(g, self.argmax, h, w)


class AvgPool2d(Function):
    name = "avg_pool2d"

    def forward(self, x, kernel, stride, padding):
        self.in_shape, self.window = x.shape, (*kernel, *stride, *padding)
        return kernels.pick("avg_pool_forward", backend.get_array_module(x))(x, *self.window)

    def backward(self, g):
        h, w = self.in_shape[2:]
        return kernels.pick("avg_pool_backward", backend.get_array_module(g))(g, h, w, *self.window)


class AdaptiveAvgPool2d(Function):
    name = "adaptive_avg_pool2d"

    def forward(self, x, output_size):
        xp = backend.get_array_module(x)
        self.in_shape, self.is_global = x.shape, output_size == (1, 1)
        if self.is_global:
            return kernels.pick("global_avg_pool_forward", xp)(x)
        return kernels.pick("adaptive_avg_pool_forward", xp)(x, *output_size)

    def backward(self, g):
        xp = backend.get_array_module(g)
        h, w = self.in_shape[2:]
        kernel = "global_avg_pool_backward" if self.is_global else "adaptive_avg_pool_backward"
        return kernels.pick(kernel, xp)(g, h, w)


def _window_args(op, x, kernel_size, stride, padding):
    check_nchw(op, x)
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ArgumentError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    output_size(op, x.shape, kernel, stride, padding)
    return dict(kernel=kernel, stride=stride, padding=padding)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each window (stride defaults to the kernel size; padding pads with -inf)."""
    return MaxPool2d.apply(x, **_window_args("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each window, padded zeros included (count_include_pad=True)."""
    return AvgPool2d.apply(x, **_window_args("avg_pool2d", x, kernel_size, stride, padding))


def adaptive_avg_pool2d(x, output_size):
    """Average into an output_size grid with PyTorch's window bounds; output_size 1 is global pooling."""
    op = "adaptive_avg_pool2d"
    check_nchw(op, x)
    size = pair(op, "output_size", output_size, 1)
    if size[0] > x.shape[2] or size[1] > x.shape[3]:
        raise ShapeError(f"{op}: output size {size} is larger than the input's {tuple(x.shape[2:])}")
    return AdaptiveAvgPool2d.apply(x, output_size=size)


def global_avg_pool2d(x):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""
    return adaptive_avg_pool2d(x, 1)
