"""Pooling over the H x W planes of NCHW inputs: max_pool2d, avg_pool2d (count_include_pad, PyTorch's
default), adaptive_avg_pool2d and global_avg_pool2d. Output sizes follow conv_out_size:
OH = floor((H + 2 padding - kernel) / stride) + 1. Max pooling has kernels for both memory formats; the
average-pooling kernels want NCHW memory, so a channels-last input is copied to NCHW and the result back
(counted conversions; the global pool runs once per network, on its smallest activation)."""
from .. import kernels
from ..errors import ArgumentError, ShapeError
from ..function import Function
from .operands import not_implemented
from .window import check_nchw, pair, sliding_window


class MaxPool2d(Function):
    name = "max_pool2d"

    def forward(self, x, window):
        y, saved = kernels.max_pool2d_forward(x, window)
        self.save_for_backward(saved)
        return y

    def backward(self, g):
        (saved,) = self.saved_tensors
        return kernels.max_pool2d_backward(saved, g)              # the gradient goes to each window's winner


class AvgPool2d(Function):
    name = "avg_pool2d"

    def forward(self, x, window):
        y, saved = kernels.avg_pool2d_forward(x, window)
        self.save_for_backward(saved)
        return y

    def backward(self, g):
        (saved,) = self.saved_tensors
        return kernels.avg_pool2d_backward(saved, g)              # spread evenly over each window


class AdaptiveAvgPool2d(Function):
    name = "adaptive_avg_pool2d"

    def forward(self, x, output_size):
        y, saved = kernels.adaptive_avg_pool2d_forward(x, output_size)
        self.save_for_backward(saved)
        return y

    def backward(self, g):
        (saved,) = self.saved_tensors
        return kernels.adaptive_avg_pool2d_backward(saved, g)


def _pool_window(op, x, kernel_size, stride, padding):
    check_nchw(op, x)
    window = sliding_window(op, x.shape, kernel_size, kernel_size if stride is None else stride, padding)
    if any(p > k // 2 for p, k in zip(window.padding, window.kernel)):
        raise ArgumentError(f"{op}: padding {window.padding} must be at most half the kernel size {window.kernel}")
    return window


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over each window (stride defaults to the kernel size; padding pads with -inf). torch's signature;
    dilation, ceil_mode and return_indices are accepted at their defaults only."""
    x = input
    not_implemented("max_pool2d", dilation=(dilation, 1), ceil_mode=(ceil_mode, False),
                    return_indices=(return_indices, False))
    return MaxPool2d.apply(x, window=_pool_window("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window, padded zeros included (count_include_pad=True, torch's default)."""
    x = input
    not_implemented("avg_pool2d", ceil_mode=(ceil_mode, False), count_include_pad=(count_include_pad, True),
                    divisor_override=(divisor_override, None))
    return AvgPool2d.apply(x, window=_pool_window("avg_pool2d", x, kernel_size, stride, padding))


def adaptive_avg_pool2d(input, output_size):
    """Average into an output_size grid with PyTorch's window bounds; output_size 1 is global pooling."""
    x = input
    op = "adaptive_avg_pool2d"
    check_nchw(op, x)
    size = pair(op, "output_size", output_size, 1)
    if size[0] > x.shape[2] or size[1] > x.shape[3]:
        raise ShapeError(f"{op}: output size {size} is larger than the input's {tuple(x.shape[2:])}")
    return AdaptiveAvgPool2d.apply(x, output_size=size)


def global_avg_pool2d(x):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""
    return adaptive_avg_pool2d(x, 1)
