"""im2col / col2im: unfold the sliding windows of an NCHW image into columns, and fold them back; and the
convolution they make (conv2d_forward / conv2d_backward, at the end of this file).

Notation: N batch, C channels, H x W input, KH x KW kernel, stride (SH, SW), padding (PH, PW), dilation
(DH, DW), OH x OW output. A column buffer has shape (N, C, KH, KW, OH, OW):

    col[n, c, i, j, y, x] = x_padded[n, c, y*SH + i*DH, x*SW + j*DW]

so a convolution becomes one matrix product: (OC, C*KH*KW) @ (C*KH*KW, OH*OW) per image. col2im is its
adjoint: every column entry is added back to the pixel it came from, so overlapping windows sum.

Both flavours share one signature:
    im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, out=None) -> col
        written into ``out`` when given: a C-contiguous buffer of exactly N C KH KW OH OW values of x's dtype
        (the convolution workspace of conv_columns.py, which makes it so; a wrong size is refused by reshape)
    col2im(col, h, w, sh, sw, ph, pw, dh, dw) -> image (N, C, H, W)

The GPU convolution (minires/functional/conv_gemm.py) wants the whole batch's columns as one (K, N OH OW)
matrix: im2col_rows / col2im_rows do the same in the "rows" order (C, KH, KW, N, OH, OW), same signatures.
They have a NumPy reference (the images-first one, transposed) and a CUDA version, no numba one: only the
GPU path uses them.
"""
from typing import NamedTuple

import numpy as np

from minires.backend import get_array_module

from .conv_columns import ConvColumns
from .jit import parallel_jit, prange, serial_jit


def conv_out_size(size, kernel, stride, padding, dilation=1):
    """Output size of a sliding window: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.

    The window covers dilation * (kernel - 1) + 1 input pixels; it fits floor(...) / stride + 1 times.
    """
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class Window(NamedTuple):
    """A sliding window over the H x W planes: (height, width) pairs for the kernel, stride, padding and
    dilation, and the output size they give (OH, OW), computed once with conv_out_size by whoever builds it
    (minires.functional.window.sliding_window checks the arguments and builds it)."""
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out: tuple


# --- NumPy reference: one strided slice per kernel offset (i, j), vectorised over N, C, OH, OW ---------

def im2col_reference(x, kh, kw, sh, sw, ph, pw, dh, dw, out=None):
    xp = get_array_module(x)
    n, c, h, w = x.shape
    oh, ow = conv_out_size(h, kh, sh, ph, dh), conv_out_size(w, kw, sw, pw, dw)
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H + 2PH, W + 2PW)
    shape = (n, c, kh, kw, oh, ow)
    col = xp.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)  # (N, C, KH, KW, OH, OW)
    for i in range(kh):
        top = i * dh
        for j in range(kw):
            left = j * dw
            col[:, :, i, j] = padded[:, :, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw]
    return col


def col2im_reference(col, h, w, sh, sw, ph, pw, dh, dw):
    xp = get_array_module(col)
    n, c, kh, kw, oh, ow = col.shape
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        top = i * dh
        for j in range(kw):
            left = j * dw
            padded[:, :, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw] += col[:, :, i, j]
    return padded[:, :, ph:ph + h, pw:pw + w]


def im2col_rows_reference(x, kh, kw, sh, sw, ph, pw, dh, dw, out=None):
    """col (C, KH, KW, N, OH, OW): the images-first columns with the batch axis moved in front of OH, OW."""
    xp = get_array_module(x)
    col = im2col_reference(x, kh, kw, sh, sw, ph, pw, dh, dw).transpose(1, 2, 3, 0, 4, 5)
    if out is None:
        return xp.ascontiguousarray(col)
    rows = out.reshape(col.shape)
    rows[...] = col
    return rows


def col2im_rows_reference(col, h, w, sh, sw, ph, pw, dh, dw):
    return col2im_reference(col.transpose(3, 0, 1, 2, 4, 5), h, w, sh, sw, ph, pw, dh, dw)


# --- numba: explicit loops, one (image, channel) plane per parallel task; every index is bounds-checked --
# (Measured at 128x16x32x32, 3x3: the branchy im2col loop below ran faster than one with precomputed
# valid ranges, 7.0 vs 9.4 ms; for col2im the precomputed range won, 8.8 vs 14.3 ms.)

def _valid_range(offset, stride, size, out_size):
    """Output positions o in [lo, hi) with 0 <= o * stride + offset < size."""
    lo = 0 if offset >= 0 else (-offset + stride - 1) // stride
    hi = 0 if size - 1 - offset < 0 else min(out_size, (size - 1 - offset) // stride + 1)
    return lo, max(lo, hi)


def im2col_loops(x, kh, kw, sh, sw, ph, pw, dh, dw, out=None):
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    oh, ow = conv_out_size(h, kh, sh, ph, dh), conv_out_size(w, kw, sw, pw, dw)
    if out is None:
        col = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    else:
        col = out.reshape((n, c, kh, kw, oh, ow))  # a reused workspace of exactly this size
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    row = y * sh - ph + i * dh
                    if row < 0 or row >= h:
                        for xo in range(ow):
                            col[b, ch, i, j, y, xo] = 0
                        continue
                    for xo in range(ow):
                        column = xo * sw - pw + j * dw
                        if 0 <= column < w:
                            col[b, ch, i, j, y, xo] = x[b, ch, row, column]
                        else:
                            col[b, ch, i, j, y, xo] = 0
    return col


def col2im_loops(col, h, w, sh, sw, ph, pw, dh, dw):
    col = np.ascontiguousarray(col)
    n, c, kh, kw, oh, ow = col.shape
    image = np.zeros((n, c, h, w), dtype=col.dtype)
    for plane in prange(n * c):  # each task owns one output plane: no two tasks add to the same pixel
        b, ch = plane // c, plane % c
        for i in range(kh):
            for j in range(kw):
                lo, hi = _valid_range(j * dw - pw, sw, w, ow)
                for y in range(oh):
                    row = y * sh - ph + i * dh
                    if row < 0 or row >= h:
                        continue
                    source = col[b, ch, i, j, y]
                    target = image[b, ch, row]
                    for xo in range(lo, hi):
                        target[xo * sw - pw + j * dw] += source[xo]
    return image


# Helpers that compiled kernels call must be compiled too.
conv_out_size = serial_jit(conv_out_size) or conv_out_size
_valid_range = serial_jit(_valid_range) or _valid_range
im2col_numba = parallel_jit(im2col_loops)
col2im_numba = parallel_jit(col2im_loops)


# --- conv2d by im2col + GEMM ----------------------------------------------------------------------------
# conv2d by im2col + one matrix product per image and group: the reference, and the numba flavour, which
# runs the same maths on a lent column workspace (conv_columns.py) with numba's im2col.
#
# Notation: input x (N, C, H, W), weight W (OC, C/G, KH, KW) for G groups, output y (N, OC, OH, OW) with
#     OH = floor((H + 2 PH - DH (KH - 1) - 1) / SH) + 1       (conv_out_size; OW likewise)
# and K = (C/G) KH KW, P = OH OW. Per image n and group g the convolution is a matrix product of the weight
# with the image's columns (im2col above unfolds them):
#     y[n, g] = W[g] @ col[n, g]                              (OC/G, K) @ (K, P)
# Backward, with gy = dL/dy:
#     dW[g] = sum_n gy[n, g] @ col[n, g]^T,    dx = col2im(W[g]^T @ gy[n, g]),    db = sum of gy over N, OH, OW.
#
# Signatures (every flavour; the CUDA one, kernels/cuda/im2col.py, makes one GEMM of the whole batch):
#     conv2d_forward(x, weight, bias, window, groups) -> y, saved
#     conv2d_backward(saved, g, needs) -> dx, dW, db      (needs: which of the three to compute; None for the rest)
# x, g NCHW memory; ``saved`` is whatever that flavour's backward reads. Channels-last float32 convolutions run
# the direct kernels instead (kernels/direct/): kernels/__init__.py's conv2d rule says when.


def per_group(weight, groups):
    """W (OC, C/G, KH, KW) as G matrices (G, OC/G, K)."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)


def _columns(x, window, groups):
    """col (N, G, K, P) of x by the reference im2col."""
    n, _, (oh, ow) = x.shape[0], x.shape[1], window.out
    col = im2col_reference(x, *window.kernel, *window.stride, *window.padding, *window.dilation)  # (N, C, KH, KW, OH, OW)
    return col.reshape(n, groups, -1, oh * ow)


def conv2d_forward_reference(x, weight, bias, window, groups):
    xp = get_array_module(x)
    n, oc, (oh, ow) = x.shape[0], weight.shape[0], window.out
    y = xp.matmul(per_group(weight, groups), _columns(x, window, groups))   # y = W col: (N, G, OC/G, P)
    y = y.reshape(n, oc, oh, ow)
    if bias is not None:
        y += bias.reshape(1, oc, 1, 1)                                       # y = W col + b
    return y, (x, weight, window, groups)


def conv2d_backward_reference(saved, g, needs):
    x, weight, window, groups = saved
    xp = get_array_module(g)
    need_x, need_w, need_b = needs
    (n, c, h, w), (kh, kw), (oh, ow) = x.shape, window.kernel, window.out
    gy = g.reshape(n, groups, -1, oh * ow)                                   # (N, G, OC/G, P)
    grad_b = g.sum(axis=(0, 2, 3)) if need_b else None                       # db = sum gy
    grad_w = grad_x = None
    if need_w:
        col = _columns(x, window, groups)
        grad_w = xp.matmul(gy, col.swapaxes(-1, -2)).sum(axis=0).reshape(weight.shape)  # dW = sum_n gy col^T
    if need_x:
        dcol = xp.matmul(per_group(weight, groups).swapaxes(1, 2), gy)      # W^T gy: (N, G, K, P)
        grad_x = col2im_reference(dcol.reshape(n, c, kh, kw, oh, ow), h, w,  # dx = col2im(W^T gy)
                                  *window.stride, *window.padding, *window.dilation)
    return grad_x, grad_w, grad_b


def conv_by_columns(im2col, col2im):
    """The forward and backward of the same maths on conv_columns.py's workspace, unfolding with ``im2col``
    and folding with ``col2im`` (numba's here, CUDA's in kernels/cuda/im2col.py for grouped convolutions)."""
    def forward(x, weight, bias, window, groups):
        xp = get_array_module(x)
        n, oc, (oh, ow) = x.shape[0], weight.shape[0], window.out
        columns = ConvColumns(x, window, groups, im2col, col2im)
        with columns.lease() as col:                                  # (N, G, K, P)
            y = xp.matmul(per_group(weight, groups), col)             # y = W col: (N, G, OC/G, P)
        y = y.reshape(n, oc, oh, ow)
        if bias is not None:
            y += bias.reshape(1, oc, 1, 1)
        return y, (columns, weight)

    def backward(saved, g, needs):
        columns, weight = saved
        xp = get_array_module(g)
        need_x, need_w, need_b = needs
        groups = columns.groups
        gy = g.reshape(g.shape[0], groups, -1, g.shape[2] * g.shape[3])        # (N, G, OC/G, P)
        w_t = xp.ascontiguousarray(per_group(weight, groups).swapaxes(1, 2))   # (G, K, OC/G)
        grad_b = g.sum(axis=(0, 2, 3)) if need_b else None
        grad_w = columns.weight_gradient(gy).reshape(weight.shape) if need_w else None
        grad_x = columns.fold(w_t, gy) if need_x else None
        return grad_x, grad_w, grad_b

    return forward, backward


conv2d_forward_numba, conv2d_backward_numba = conv_by_columns(im2col_numba, col2im_numba) if im2col_numba \
    else (None, None)
