"""Pooling over the H x W planes of NCHW inputs: max_pool2d, avg_pool2d (count_include_pad, PyTorch's
default), adaptive_avg_pool2d and global_avg_pool2d. Output sizes follow conv_out_size:
OH = floor((H + 2 padding - kernel) / stride) + 1. Max pooling has kernels for both memory formats; the
average-pooling kernels want NCHW memory, so a channels-last input is copied to NCHW and the result back
(counted conversions; the global pool runs once per network, on its smallest activation)."""
from .. import backend, kernels
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..memory_format import Layout
from .window import check_nchw, pair, sliding_window


class MaxPool2d(Function):
    name = "max_pool2d"

    def forward(self, x, window):
        self.in_shape, self.layout = x.shape, Layout.of(x)
        self.kernels = "max_pool_channels_last" if self.layout.channels_last else "max_pool"  # no copies
        kernel = kernels.pick(f"{self.kernels}_forward", backend.get_array_module(x))
        y, argmax = kernel(self.layout.memory(x), *_pool_args(window))
        self.save_for_backward(argmax)
        self.window = window
        return self.layout.tensor(y)

    def backward(self, g):
        (argmax,) = self.saved_tensors
        h, w = self.in_shape[2:]
        kernel = kernels.pick(f"{self.kernels}_backward", backend.get_array_module(g))
        return self.layout.tensor(kernel(self.layout.memory(g), argmax, h, w, *_pool_args(self.window)))  # at the winner


class AvgPool2d(Function):
    name = "avg_pool2d"

    def forward(self, x, window):
        self.in_shape, self.window, self.layout = x.shape, window, Layout.of(x)
        kernel = kernels.pick("avg_pool_forward", backend.get_array_module(x))
        return self.layout.restore(kernel(self.layout.nchw(x), *_pool_args(window)))

    def backward(self, g):
        h, w = self.in_shape[2:]
        # dx = each window's gradient spread evenly over its KH KW pixels
        kernel = kernels.pick("avg_pool_backward", backend.get_array_module(g))
        return self.layout.restore(kernel(self.layout.nchw(g), h, w, *_pool_args(self.window)))


class AdaptiveAvgPool2d(Function):
    name = "adaptive_avg_pool2d"

    def forward(self, x, output_size):
        xp = backend.get_array_module(x)
        self.in_shape, self.is_global, self.layout = x.shape, output_size == (1, 1), Layout.of(x)
        if self.is_global:
            return self.layout.restore(kernels.pick("global_avg_pool_forward", xp)(self.layout.nchw(x)))
        return self.layout.restore(kernels.pick("adaptive_avg_pool_forward", xp)(self.layout.nchw(x), *output_size))

    def backward(self, g):
        xp = backend.get_array_module(g)
        h, w = self.in_shape[2:]
        kernel = "global_avg_pool_backward" if self.is_global else "adaptive_avg_pool_backward"
        return self.layout.restore(kernels.pick(kernel, xp)(self.layout.nchw(g), h, w))


def _pool_args(window):
    """The pooling kernels' window arguments: KH, KW, SH, SW, PH, PW."""
    return (*window.kernel, *window.stride, *window.padding)


def _pool_window(op, x, kernel_size, stride, padding):
    check_nchw(op, x)
    window = sliding_window(op, x.shape, kernel_size, kernel_size if stride is None else stride, padding)
    if any(p > k // 2 for p, k in zip(window.padding, window.kernel)):
        raise ArgumentError(f"{op}: padding {window.padding} must be at most half the kernel size {window.kernel}")
    return window


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each window (stride defaults to the kernel size; padding pads with -inf)."""
    return MaxPool2d.apply(x, window=_pool_window("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each window, padded zeros included (count_include_pad=True)."""
    return AvgPool2d.apply(x, window=_pool_window("avg_pool2d", x, kernel_size, stride, padding))


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
