"""Launch code for pool.cu, with the signatures of kernels/pool.py's references (its cuda slots)."""
from minires.backend import get_array_module

from ..im2col import conv_out_size
from .modules import launch, launch_per_channel


def _window(x, kh, kw, sh, sw, ph, pw):
    n, c, h, w = x.shape
    return n * c, h, w, conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw), kh, kw, sh, sw, ph, pw


def max_pool_forward(x, kh, kw, sh, sw, ph, pw):
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    window = _window(x, kh, kw, sh, sw, ph, pw)
    shape = x.shape[:2] + window[3:5]
    y, argmax = xp.empty(shape, dtype=x.dtype), xp.empty(shape, dtype=xp.int64)
    launch("pool", "max_pool_forward", x.dtype, y.size, (x, y, argmax, *window))
    return y, argmax


def max_pool_backward(g, argmax, h, w, kh, kw, sh, sw, ph, pw):
    xp = get_array_module(g)
    g, argmax = xp.ascontiguousarray(g), xp.ascontiguousarray(argmax)
    n, c, oh, ow = g.shape
    dx = xp.empty((n, c, h, w), dtype=g.dtype)
    launch("pool", "max_pool_backward", g.dtype, dx.size,
           (g, argmax, dx, n * c, h, w, oh, ow, kh, kw, sh, sw, ph, pw))
    return dx


def avg_pool_forward(x, kh, kw, sh, sw, ph, pw):
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    window = _window(x, kh, kw, sh, sw, ph, pw)
    y = xp.empty(x.shape[:2] + window[3:5], dtype=x.dtype)
    launch("pool", "avg_pool_forward", x.dtype, y.size, (x, y, *window))
    return y


def avg_pool_backward(g, h, w, kh, kw, sh, sw, ph, pw):
    xp = get_array_module(g)
    g = xp.ascontiguousarray(g)
    n, c, oh, ow = g.shape
    dx = xp.empty((n, c, h, w), dtype=g.dtype)
    launch("pool", "avg_pool_backward", g.dtype, dx.size, (g, dx, n * c, h, w, oh, ow, kh, kw, sh, sw, ph, pw))
    return dx


def global_avg_pool_forward(x):
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    y = xp.empty((n, c, 1, 1), dtype=x.dtype)
    launch_per_channel("pool", "global_avg_pool_forward", x.dtype, n * c, (x, y, n * c, h * w))
    return y


def global_avg_pool_backward(g, h, w):
    xp = get_array_module(g)
    g = xp.ascontiguousarray(g)
    dx = xp.empty(g.shape[:2] + (h, w), dtype=g.dtype)
    launch("pool", "global_avg_pool_backward", g.dtype, dx.size, (g, dx, g.shape[0] * g.shape[1], h * w))
    return dx
