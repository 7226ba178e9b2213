"""Pooling over the H x W planes of NCHW arrays: max, average (count_include_pad, PyTorch's default),
global average, and adaptive average.

Notation as in im2col.py: window KH x KW, stride (SH, SW), padding (PH, PW), output OH x OW with
OH = conv_out_size(H, KH, SH, PH). Max pooling pads with -inf (a padded pixel never wins) and keeps, for each
output, the flat index row * W + column of the winning input pixel in its plane: backward adds the gradient
there, so overlapping windows that share a winner add up. The winner is chosen as PyTorch's CPU kernel does:
among real (unpadded) pixels, a NaN wins and the last NaN in window order beats earlier ones; otherwise the
first pixel holding the maximum (so a window of -inf goes to its first real pixel).

Signatures (both flavours):
    max_pool_forward(x, kh, kw, sh, sw, ph, pw) -> y, argmax (int64, (N, C, OH, OW))
    max_pool_backward(g, argmax, h, w, kh, kw, sh, sw, ph, pw) -> dx
        (the window is for the CUDA version, a gather over the windows that cover each pixel; the scatter of
        the others adds g at argmax and does not need it)
    avg_pool_forward(x, kh, kw, sh, sw, ph, pw) -> y
    avg_pool_backward(g, h, w, kh, kw, sh, sw, ph, pw) -> dx
    global_avg_pool_forward(x) -> y (N, C, 1, 1);  global_avg_pool_backward(g, h, w) -> dx
    adaptive_avg_pool_forward(x, oh, ow) -> y;      adaptive_avg_pool_backward(g, h, w) -> dx
    max_pool_channels_last_forward / _backward: the max-pool pair on (N, H, W, C) arrays (channels-last
        memory), argmax (N, OH, OW, C) holding the same in-plane index row * W + column
The CUDA versions of the NCHW kernels are kernels/cuda/pool.cu, launched by kernels/cuda/pool.py.
"""
import numpy as np

from minires.backend import get_array_module

from . import im2col as columns
from .im2col import conv_out_size
from .jit import parallel_jit, prange


# --- NumPy reference ------------------------------------------------------------------------------

def max_pool_forward_reference(x, kh, kw, sh, sw, ph, pw):
    xp = get_array_module(x)
    n, c, h, w = x.shape
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-xp.inf)
    real = xp.pad(xp.ones((h, w), bool), ((ph, ph), (pw, pw)))  # False on padding: it never wins
    windows = xp.stack([padded[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                        for i in range(kh) for j in range(kw)], axis=2)  # (N, C, KH*KW, OH, OW)
    in_image = xp.stack([real[i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                         for i in range(kh) for j in range(kw)])  # (KH*KW, OH, OW)
    nan = xp.isnan(windows) & in_image
    largest = xp.where(in_image & ~nan, windows, -xp.inf).max(axis=2, keepdims=True)
    first_largest = (in_image & (windows == largest)).argmax(axis=2)  # (N, C, OH, OW): offset i*KW + j
    last_nan = kh * kw - 1 - nan[:, :, ::-1].argmax(axis=2)
    winner = xp.where(nan.any(axis=2), last_nan, first_largest)
    y = xp.take_along_axis(windows, winner[:, :, None], axis=2)[:, :, 0]
    rows = xp.arange(oh).reshape(-1, 1) * sh - ph + (winner // kw)  # back to input coordinates
    cols = xp.arange(ow).reshape(1, -1) * sw - pw + (winner % kw)
    return y, (rows * w + cols).astype(xp.int64)


def max_pool_backward_reference(g, argmax, h, w, kh, kw, sh, sw, ph, pw):
    xp = get_array_module(g)
    n, c = g.shape[:2]
    dx = xp.zeros((n * c, h * w), dtype=g.dtype)
    planes = xp.arange(n * c).reshape(-1, 1)
    xp.add.at(dx, (planes, argmax.reshape(n * c, -1)), g.reshape(n * c, -1))  # overlapping winners add up
    return dx.reshape(n, c, h, w)


def avg_pool_forward_reference(x, kh, kw, sh, sw, ph, pw):
    col = columns.im2col_reference(x, kh, kw, sh, sw, ph, pw, 1, 1)  # (N, C, KH, KW, OH, OW), zero padded
    return col.sum(axis=(2, 3)) / (kh * kw)  # padded zeros count: count_include_pad=True


def avg_pool_backward_reference(g, h, w, kh, kw, sh, sw, ph, pw):
    xp = get_array_module(g)
    n, c, oh, ow = g.shape
    col = xp.broadcast_to((g / (kh * kw))[:, :, None, None], (n, c, kh, kw, oh, ow))
    return columns.col2im_reference(col, h, w, sh, sw, ph, pw, 1, 1)


def global_avg_pool_forward_reference(x):
    return x.mean(axis=(2, 3), keepdims=True)


def global_avg_pool_backward_reference(g, h, w):
    xp = get_array_module(g)
    return xp.broadcast_to(g / (h * w), g.shape[:2] + (h, w)).copy()


def _adaptive_bounds(size, out):
    """PyTorch's adaptive windows: cell i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avg_pool_forward_reference(x, oh, ow):
    xp = get_array_module(x)
    n, c, h, w = x.shape
    y = xp.empty((n, c, oh, ow), dtype=x.dtype)
    for i, (top, bottom) in enumerate(_adaptive_bounds(h, oh)):
        for j, (left, right) in enumerate(_adaptive_bounds(w, ow)):
            y[:, :, i, j] = x[:, :, top:bottom, left:right].mean(axis=(2, 3))
    return y


def adaptive_avg_pool_backward_reference(g, h, w):
    xp = get_array_module(g)
    n, c, oh, ow = g.shape
    dx = xp.zeros((n, c, h, w), dtype=g.dtype)
    for i, (top, bottom) in enumerate(_adaptive_bounds(h, oh)):
        for j, (left, right) in enumerate(_adaptive_bounds(w, ow)):
            area = (bottom - top) * (right - left)
            dx[:, :, top:bottom, left:right] += (g[:, :, i, j] / area)[:, :, None, None]
    return dx


def max_pool_channels_last_forward_reference(x, kh, kw, sh, sw, ph, pw):
    """x (N, H, W, C): the NCHW reference on the transposed view (the same winners, index for index)."""
    y, argmax = max_pool_forward_reference(x.transpose(0, 3, 1, 2), kh, kw, sh, sw, ph, pw)
    xp = get_array_module(x)
    return xp.ascontiguousarray(y.transpose(0, 2, 3, 1)), xp.ascontiguousarray(argmax.transpose(0, 2, 3, 1))


def max_pool_channels_last_backward_reference(g, argmax, h, w, kh, kw, sh, sw, ph, pw):
    dx = max_pool_backward_reference(g.transpose(0, 3, 1, 2), argmax.transpose(0, 3, 1, 2), h, w, kh, kw, sh, sw,
                                     ph, pw)
    return get_array_module(g).ascontiguousarray(dx.transpose(0, 2, 3, 1))


# --- numba: one (image, channel) plane per parallel task ------------------------------------------

def max_pool_forward_loops(x, kh, kw, sh, sw, ph, pw):
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    y, argmax = np.empty((n, c, oh, ow), dtype=x.dtype), np.empty((n, c, oh, ow), dtype=np.int64)
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for yo in range(oh):
            for xo in range(ow):
                best = -np.inf
                where = -1
                for i in range(kh):
                    row = yo * sh - ph + i
                    if row < 0 or row >= h:
                        continue
                    for j in range(kw):
                        column = xo * sw - pw + j
                        if column < 0 or column >= w:
                            continue
                        v = x[b, ch, row, column]
                        if v > best or where < 0 or np.isnan(v):  # as PyTorch: the last NaN wins
                            best, where = v, row * w + column
                y[b, ch, yo, xo] = best
                argmax[b, ch, yo, xo] = where
    return y, argmax


def max_pool_backward_loops(g, argmax, h, w, kh, kw, sh, sw, ph, pw):
    g, argmax = np.ascontiguousarray(g), np.ascontiguousarray(argmax)
    n, c, oh, ow = g.shape
    dx = np.zeros((n, c, h, w), dtype=g.dtype)
    for plane in prange(n * c):  # each task owns one plane of dx: no races
        b, ch = plane // c, plane % c
        for yo in range(oh):
            for xo in range(ow):
                where = argmax[b, ch, yo, xo]
                dx[b, ch, where // w, where % w] += g[b, ch, yo, xo]
    return dx


def avg_pool_forward_loops(x, kh, kw, sh, sw, ph, pw):
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for yo in range(oh):
            for xo in range(ow):
                total = 0.0
                for i in range(kh):
                    row = yo * sh - ph + i
                    if 0 <= row < h:
                        for j in range(kw):
                            column = xo * sw - pw + j
                            if 0 <= column < w:
                                total += x[b, ch, row, column]
                y[b, ch, yo, xo] = total / (kh * kw)
    return y


def avg_pool_backward_loops(g, h, w, kh, kw, sh, sw, ph, pw):
    g = np.ascontiguousarray(g)
    n, c, oh, ow = g.shape
    dx = np.zeros((n, c, h, w), dtype=g.dtype)
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        for yo in range(oh):
            for xo in range(ow):
                share = g[b, ch, yo, xo] / (kh * kw)
                for i in range(kh):
                    row = yo * sh - ph + i
                    if 0 <= row < h:
                        for j in range(kw):
                            column = xo * sw - pw + j
                            if 0 <= column < w:
                                dx[b, ch, row, column] += share
    return dx


def global_avg_pool_forward_loops(x):
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    y = np.empty((n, c, 1, 1), dtype=x.dtype)
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        total = 0.0
        for row in range(h):
            for column in range(w):
                total += x[b, ch, row, column]
        y[b, ch, 0, 0] = total / (h * w)
    return y


def global_avg_pool_backward_loops(g, h, w):
    g = np.ascontiguousarray(g)
    n, c = g.shape[0], g.shape[1]
    dx = np.empty((n, c, h, w), dtype=g.dtype)
    for plane in prange(n * c):
        b, ch = plane // c, plane % c
        share = g[b, ch, 0, 0] / (h * w)
        for row in range(h):
            for column in range(w):
                dx[b, ch, row, column] = share
    return dx


# --- numba on channels-last memory: one output row per task, the channels innermost (contiguous) ----------

def max_pool_channels_last_forward_loops(x, kh, kw, sh, sw, ph, pw):
    x = np.ascontiguousarray(x)
    n, h, w, c = x.shape
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    y, argmax = np.empty((n, oh, ow, c), dtype=x.dtype), np.empty((n, oh, ow, c), dtype=np.int64)
    for task in prange(n * oh):
        b, yo = task // oh, task % oh
        for xo in range(ow):
            best, where = y[b, yo, xo], argmax[b, yo, xo]
            best[:] = -np.inf
            where[:] = -1
            for i in range(kh):  # the window in the order of the NCHW loops, so the same pixel wins
                row = yo * sh - ph + i
                if row < 0 or row >= h:
                    continue
                for j in range(kw):
                    column = xo * sw - pw + j
                    if column < 0 or column >= w:
                        continue
                    for ch in range(c):
                        v = x[b, row, column, ch]
                        if v > best[ch] or where[ch] < 0 or np.isnan(v):  # as PyTorch: the last NaN wins
                            best[ch], where[ch] = v, row * w + column
    return y, argmax


def max_pool_channels_last_backward_loops(g, argmax, h, w, kh, kw, sh, sw, ph, pw):
    g, argmax = np.ascontiguousarray(g), np.ascontiguousarray(argmax)
    n, oh, ow, c = g.shape
    dx = np.zeros((n, h, w, c), dtype=g.dtype)
    for b in prange(n):  # each task owns one image of dx: no races
        for yo in range(oh):
            for xo in range(ow):
                for ch in range(c):
                    where = argmax[b, yo, xo, ch]
                    dx[b, where // w, where % w, ch] += g[b, yo, xo, ch]
    return dx


max_pool_forward_numba = parallel_jit(max_pool_forward_loops)
max_pool_backward_numba = parallel_jit(max_pool_backward_loops)
avg_pool_forward_numba = parallel_jit(avg_pool_forward_loops)
avg_pool_backward_numba = parallel_jit(avg_pool_backward_loops)
global_avg_pool_forward_numba = parallel_jit(global_avg_pool_forward_loops)
global_avg_pool_backward_numba = parallel_jit(global_avg_pool_backward_loops)
max_pool_channels_last_forward_numba = parallel_jit(max_pool_channels_last_forward_loops)
max_pool_channels_last_backward_numba = parallel_jit(max_pool_channels_last_backward_loops)
