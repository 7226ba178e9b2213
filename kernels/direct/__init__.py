"""Direct convolutions on channels-last memory: the fast float32 CPU path for conv2d (README.md here says how
the kernels are generated, cached and sized). x is an NCHW-shaped view of an NHWC array, and so is y; the
kernels pad each image themselves. With gy = dL/dy in NHWC:
    y  = forward(x, W) + b
    db = sum of gy over N, OH, OW,   dW = weight_grad(x, gy),   dx = input_grad(gy, W)
reference.py computes the same three sums with plain loops over output pixel, channel and tap; fast.py
generates the vector-register kernels that kernels/__init__.py's conv2d rule runs. ``applies`` is that rule's
half that lives here: float32 NumPy arrays, no groups or dilation, a channels-last input or weight (as in
torch, either makes the output channels-last).
"""
import numpy as np

from minires import memory_format as memory_format_rules

from . import isa


def applies(x, weight, window, groups):
    """True where the direct channels-last kernels can compute this convolution (numba aside)."""
    return (groups == 1 and window.dilation == (1, 1) and x.dtype == np.float32 and weight.dtype == np.float32
            and type(x) is np.ndarray and type(weight) is np.ndarray
            and (memory_format_rules.only_channels_last(x) or memory_format_rules.only_channels_last(weight))
            and isa.current().lanes > 0)


def conv2d_forward(x, weight, bias, window):
    """y (NCHW view of NHWC memory) and what backward needs."""
    from . import fast  # numba and llvmlite at import: only where the rule chose this path
    x_nhwc = memory_format_rules.nhwc(x)                                          # (N, H, W, C)
    y = fast.forward(x_nhwc, weight, window.stride, window.padding)              # (N, OH, OW, OC)
    if bias is not None:
        y += bias
    return memory_format_rules.nchw_view(y), (x_nhwc, weight, window)


def conv2d_backward(saved, g, needs):
    """dx channels-last (as x), dW laid out as the weight."""
    from . import fast
    x, weight, window = saved
    need_x, need_w, need_b = needs
    gy = memory_format_rules.nhwc(g)                                              # (N, OH, OW, OC)
    grad_b = gy.sum(axis=(0, 1, 2)) if need_b else None
    grad_w = grad_x = None
    if need_w:
        grad_w = fast.weight_grad(x, gy, window.kernel, window.stride, window.padding,
                                   memory_format_rules.only_channels_last(weight))
    if need_x:
        dx = fast.input_grad(gy, weight, window.stride, window.padding, x.shape[1:3])
        grad_x = memory_format_rules.nchw_view(dx)
    return grad_x, grad_w, grad_b
