"""conv2d by im2col + one batched GEMM (BLAS through xp.matmul).

Notation: input x (N, C, H, W), weight W (OC, C/G, KH, KW) for G groups, output y (N, OC, OH, OW) with
    OH = floor((H + 2 PH - DH (KH - 1) - 1) / SH) + 1       (kernels.im2col.conv_out_size; OW likewise)
and K = (C/G) KH KW, P = OH OW. Per image n and group g the convolution is a matrix product of the weight
with the image's columns (kernels/im2col.py unfolds them):
    y[n, g] = W[g] @ col[n, g]                              (OC/G, K) @ (K, P)
Backward, with gy = dL/dy:
    dW[g] = sum_n gy[n, g] @ col[n, g]^T,    dx = col2im(W[g]^T @ gy[n, g]),    db = sum of gy over N, OH, OW.

On channels-last memory the same convolution runs by direct kernels instead (functional/conv_direct.py), on
the GPU by one GEMM for the whole batch (functional/conv_gemm.py).
Where the columns live (a reused workspace, kept or recomputed, none for a 1x1 convolution) is
kernels/conv_columns.py's business, not this file's.
"""
from .. import backend
from ..errors import ShapeError
from ..function import Function
from ..kernels.conv_columns import ConvColumns
from ..memory_format import Layout, channels_last
from . import conv_direct, conv_gemm
from .conversion import contiguous
from .window import check_groups, check_nchw, sliding_window


class Conv2d(Function):
    name = "conv2d"
    fresh_input_grads = True  # dx, dW, db: new arrays (views of new arrays at most)

    def forward(self, x, weight, bias, window, groups):
        xp = backend.get_array_module(x)
        # a channels-last input (float64, reference kernels, groups) runs NCHW and gets a channels-last y
        self.layout = Layout.of(x)
        x = self.layout.nchw(x)
        n, oc, (oh, ow) = x.shape[0], weight.shape[0], window.out
        columns = ConvColumns(x, window, groups)
        self.save_for_backward(columns, weight)
        with columns.lease() as col:                                  # (N, G, K, P)
            y = xp.matmul(_per_group(weight, groups), col)            # y = W col: (N, G, OC/G, P)
        y = y.reshape(n, oc, oh, ow)
        if bias is not None:
            y += bias.reshape(1, oc, 1, 1)                            # y = W col + b
        return self.layout.restore(y)

    def backward(self, g):
        columns, weight = self.saved_tensors
        xp = backend.get_array_module(g)
        need_x, need_w, need_b = self.needs_input_grad
        groups = columns.groups
        g = self.layout.nchw(g)
        gy = g.reshape(g.shape[0], groups, -1, g.shape[2] * g.shape[3])      # (N, G, OC/G, P)
        w_t = xp.ascontiguousarray(_per_group(weight, groups).swapaxes(1, 2))  # (G, K, OC/G)
        grad_b = g.sum(axis=(0, 2, 3)) if need_b else None                     # db = sum gy
        grad_w = columns.weight_gradient(gy).reshape(weight.shape) if need_w else None  # dW = sum_n gy col^T
        grad_x = columns.fold(w_t, gy) if need_x else None                     # dx = col2im(W^T gy)
        if grad_w is not None:
            grad_w = Layout.of(weight).restore(grad_w)  # a gradient is laid out like its weight, as in torch
        return grad_x if grad_x is None else self.layout.restore(grad_x), grad_w, grad_b


def _per_group(weight, groups):
    """W (OC, C/G, KH, KW) as G matrices (G, OC/G, K)."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in PyTorch) of x (N, C, H, W) with weight (OC, C/groups, KH, KW).

    Output (N, OC, OH, OW), OH = floor((H + 2 padding - dilation (KH - 1) - 1) / stride) + 1, likewise OW.
    stride, padding and dilation are ints or (height, width) pairs.
    """
    op = "conv2d"
    check_nchw(op, x)
    check_nchw(op, weight, "weight")
    channels, out_channels = x.shape[1], weight.shape[0]
    check_groups(op, groups, channels, out_channels)
    if weight.shape[1] * groups != channels:
        raise ShapeError(f"conv2d: the input has {channels} channels but the weight {tuple(weight.shape)} with "
                         f"groups={groups} expects {weight.shape[1] * groups}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(f"conv2d: bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    window = sliding_window(op, x.shape, weight.shape[2:], stride, padding, dilation)
    if conv_direct.applies(x, weight, window, groups):
        # channels-last: a weight in that format pulls an NCHW input over, as a counted op of its own
        return conv_direct.DirectConv2d.apply(contiguous(x, channels_last), weight, bias, window=window)
    if conv_gemm.applies(x, groups):
        return conv_gemm.GemmConv2d.apply(x, weight, bias, window=window)
    return Conv2d.apply(x, weight, bias, window=window, groups=groups)
