"""conv2d by im2col + one batched GEMM (BLAS through xp.matmul).

Notation: input x (N, C, H, W), weight (OC, C/G, KH, KW) for G groups, output (N, OC, OH, OW) with
    OH = floor((H + 2 PH - DH (KH - 1) - 1) / SH) + 1       (kernels.im2col.conv_out_size; OW likewise)
and K = (C/G) KH KW, P = OH OW. Per image n and group g the convolution is a matrix product
    y[n, g] = W[g] @ col[n, g]        (OC/G, K) @ (K, P)
Backward, with gy = dL/dy:
    dW[g] = sum_n gy[n, g] @ col[n, g]^T,    dcol[n, g] = W[g]^T @ gy[n, g],    dx = col2im(dcol),
    db = sum of gy over N, OH, OW.

Keep or recompute the columns? Measured on a 2-core CPU at 128x16x32x32, 3x3, forward + backward
(benchmarks/bench_kernels.py, two runs): recomputing im2col in backward took 82.9 / 91.3 ms, keeping the
columns from forward 69.7 / 78.3 ms, so recomputing costs about 13 ms (15%) on this layer. Keeping them holds
one 72 MiB buffer per convolution from forward to backward, about 0.7 GiB across ResNet-20 at batch 128
(PyTorch keeps only the layer's input). Memory wins: backward recomputes the columns, and all convolutions
share one column workspace per thread and dtype (grown to the largest size seen; a fresh 72 MiB array costs
4-11 ms of page faults on every call). Backward writes dcol into that same workspace once dW is done, so one
convolution's forward + backward needs one column buffer beyond its own arrays (96 MiB peak measured with
tracemalloc, 160 MiB when the columns are kept).
"""
import threading

import numpy as np

from .. import backend, kernels
from ..errors import ArgumentError, ShapeError
from ..function import Function
from .window import check_nchw, output_size, pair

KEEP_COLUMNS = False  # the measured choice above; benchmarks flip it to time the other strategy


class _ColumnWorkspace(threading.local):
    """One reusable flat buffer per (array module, dtype), grown to the largest column buffer needed."""

    def __init__(self):
        self.buffers = {}

    def get(self, xp, size, dtype):
        key = (xp.__name__, np.dtype(dtype).str)
        buffer = self.buffers.get(key)
        if buffer is None or buffer.size < size:
            self.buffers.pop(key, None)  # free the smaller one before allocating the larger
            buffer = self.buffers[key] = xp.empty(size, dtype=dtype)
        return buffer[:size]

    def clear(self):
        self.buffers.clear()


workspace = _ColumnWorkspace()


def clear_workspace():
    """Release the column workspace of this thread (it is re-created on the next convolution)."""
    workspace.clear()


class Conv2d(Function):
    name = "conv2d"

    def forward(self, x, weight, bias, stride, padding, dilation, groups):
        self.geometry = (stride, padding, dilation)
        self.groups = groups
        n, _, h, w = x.shape
        oc, _, kh, kw = weight.shape
        oh, ow = output_size(self.name, x.shape, (kh, kw), stride, padding, dilation)
        xp = backend.get_array_module(x)
        col = self._columns(x, weight.shape, oh, ow, reuse=not KEEP_COLUMNS)  # (N, G, K, P)
        y = xp.matmul(weight.reshape(groups, oc // groups, -1), col)  # (N, G, OC/G, P)
        y = y.reshape(n, oc, oh, ow)
        if bias is not None:
            y += bias.reshape(1, oc, 1, 1)
        self.save_for_backward(x, weight)
        self.kept_columns = col if KEEP_COLUMNS else None
        return y

    def backward(self, g):
        x, weight = self.saved_tensors
        need_x, need_w, need_b = self.needs_input_grad
        n, c, h, w = x.shape
        oc, _, kh, kw = weight.shape
        groups, (oh, ow) = self.groups, g.shape[2:]
        xp = backend.get_array_module(g)
        gy = g.reshape(n, groups, oc // groups, oh * ow)  # (N, G, OC/G, P)
        grad_w = grad_x = None
        grad_b = g.sum(axis=(0, 2, 3)) if need_b else None
        if need_w:
            col = self.kept_columns if self.kept_columns is not None else \
                self._columns(x, weight.shape, oh, ow, reuse=True)  # (N, G, K, P)
            # dW = sum_n gy col^T; this finishes with col before dcol may overwrite the shared workspace.
            grad_w = _weight_gradient(gy, col).reshape(weight.shape)
        self.kept_columns = None
        if need_x:
            w_t = xp.ascontiguousarray(weight.reshape(groups, oc // groups, -1).swapaxes(1, 2))  # (G, K, OC/G)
            if self._is_pointwise(weight.shape):
                return xp.matmul(w_t, gy).reshape(x.shape), grad_w, grad_b  # dcol is dx itself
            k = c // groups * kh * kw
            dcol = workspace.get(xp, n * groups * k * oh * ow, g.dtype).reshape(n, groups, k, oh * ow)
            xp.matmul(w_t, gy, out=dcol)  # (N, G, K, P)
            (sh, sw), (ph, pw), (dh, dw) = self.geometry
            col2im = kernels.pick("col2im", xp)
            grad_x = col2im(dcol.reshape(n, c, kh, kw, oh, ow), h, w, sh, sw, ph, pw, dh, dw)
        return grad_x, grad_w, grad_b

    def _is_pointwise(self, weight_shape):
        stride, padding, dilation = self.geometry
        return weight_shape[2:] == (1, 1) and stride == (1, 1) and padding == (0, 0)

    def _columns(self, x, weight_shape, oh, ow, reuse):
        """im2col of x as (N, G, K, P); a 1x1 stride-1 convolution needs none: x itself is the column."""
        n, c, h, w = x.shape
        groups = self.groups
        if self._is_pointwise(weight_shape):
            return x.reshape(n, groups, c // groups, h * w)
        (sh, sw), (ph, pw), (dh, dw) = self.geometry
        kh, kw = weight_shape[2:]
        xp = backend.get_array_module(x)
        out = workspace.get(xp, n * c * kh * kw * oh * ow, x.dtype) if reuse else None
        col = kernels.pick("im2col", xp)(x, kh, kw, sh, sw, ph, pw, dh, dw, out=out)  # (N, C, KH, KW, OH, OW)
        return col.reshape(n, groups, c // groups * kh * kw, oh * ow)


def _weight_gradient(gy, col):
    """dW[g] = sum_n gy[n, g] @ col[n, g]^T for gy (N, G, OC/G, P) and col (N, G, K, P) -> (G, OC/G, K).

    Per-image products summed afterwards hold an (N, G, OC/G, K) intermediate: fine for early layers, but
    302 MB for ResNet-18's last stage at batch 32 (512 x 4608 per image). When that is larger than copying
    gy and col into (G, ., N P) layouts, one GEMM over all N P columns does it instead (and, with a long
    inner dimension, runs faster too)."""
    xp = backend.get_array_module(gy)
    n, groups, oc, p = gy.shape
    k = col.shape[2]
    if n * oc * k <= (oc + k) * n * p:
        return xp.matmul(gy, col.swapaxes(-1, -2)).sum(axis=0)
    flat_gy = gy.transpose(1, 2, 0, 3).reshape(groups, oc, n * p)  # (G, OC/G, N P)
    flat_col = col.transpose(1, 2, 0, 3).reshape(groups, k, n * p)  # (G, K, N P)
    return xp.matmul(flat_gy, flat_col.swapaxes(-1, -2))


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in PyTorch) of x (N, C, H, W) with weight (OC, C/groups, KH, KW).

    Output (N, OC, OH, OW), OH = floor((H + 2 padding - dilation (KH - 1) - 1) / stride) + 1, likewise OW.
    stride, padding and dilation are ints or (height, width) pairs.
    """
    op = "conv2d"
    check_nchw(op, x)
    check_nchw(op, weight, "weight")
    stride, padding, dilation = (pair(op, "stride", stride, 1), pair(op, "padding", padding, 0),
                                 pair(op, "dilation", dilation, 1))
    if not isinstance(groups, int) or groups < 1:
        raise ArgumentError(f"conv2d: groups must be a positive int, got {groups!r}")
    channels, out_channels = x.shape[1], weight.shape[0]
    if channels % groups or out_channels % groups:
        raise ShapeError(f"conv2d: groups={groups} must divide both the input channels ({channels}) and the "
                         f"output channels ({out_channels})")
    if weight.shape[1] * groups != channels:
        raise ShapeError(f"conv2d: the input has {channels} channels but the weight {tuple(weight.shape)} with "
                         f"groups={groups} expects {weight.shape[1] * groups}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(f"conv2d: bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    output_size(op, x.shape, weight.shape[2:], stride, padding, dilation)
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)
