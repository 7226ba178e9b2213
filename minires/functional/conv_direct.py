"""conv2d on channels-last memory by direct convolution kernels (kernels/direct_conv.py): the same maths as
functional/conv.py's im2col version, computed without columns. x is an NCHW-shaped view of an NHWC array,
and so is y. The kernels pad each image themselves; with gy = dL/dy in NHWC:
    y  = direct forward(x, W) + b
    db = sum of gy over N, OH, OW,   dW = direct weight_grad(x, gy),   dx = direct input_grad(gy, W)
``applies`` says when this path runs instead of im2col: float32 NumPy arrays, the numba kernel flavour, no
groups or dilation, and a channels-last input or weight (as in torch, either makes the output channels-last).
"""
import numpy as np

from .. import backend
from .. import memory_format as memory_format_rules
from ..function import Function
from ..kernels import cpu_flavour
from ..tensor import Tensor


def _kernels():
    """kernels/direct_conv.py needs numba (and llvmlite) at import: imported only where applies() said yes."""
    from ..kernels import direct_conv
    return direct_conv


class DirectConv2d(Function):
    name = "conv2d"

    def forward(self, x, weight, bias, window):
        direct_conv = _kernels()
        x_nhwc, self.window = memory_format_rules.nhwc(x), window
        self.save_for_backward(x_nhwc, weight)
        y = direct_conv.forward(x_nhwc, weight, window.stride, window.padding)   # (N, OH, OW, OC)
        if bias is not None:
            y += bias
        return memory_format_rules.nchw_view(y)

    def backward(self, g):
        x, weight = self.saved_tensors
        direct_conv = _kernels()
        need_x, need_w, need_b = self.needs_input_grad
        gy = memory_format_rules.nhwc(g)                                     # (N, OH, OW, OC)
        window = self.window
        grad_b = gy.sum(axis=(0, 1, 2)) if need_b else None
        grad_w = None
        if need_w:
            grad_w = direct_conv.weight_grad(x, gy, window.kernel, window.stride, window.padding,
                                             memory_format_rules.only_channels_last(weight))
        grad_x = None
        if need_x:
            dx = direct_conv.input_grad(gy, weight, window.stride, window.padding, x.shape[1:3])
            grad_x = memory_format_rules.nchw_view(dx)
        return grad_x, grad_w, grad_b


def applies(x, weight, window, groups):
    """True where the direct channels-last kernels compute this convolution."""
    if not (isinstance(x, Tensor) and isinstance(weight, Tensor)):
        return False  # Function.apply names the problem
    data, w = x.data, weight.data
    return (groups == 1 and window.dilation == (1, 1) and data.dtype == np.float32 and w.dtype == np.float32
            and backend.get_array_module(data) is np and cpu_flavour() == "numba"
            and (memory_format_rules.only_channels_last(data) or memory_format_rules.only_channels_last(w)))
