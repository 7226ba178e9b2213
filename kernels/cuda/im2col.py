"""Launch code for im2col.cu, with the signatures of kernels/im2col.py's references (its cuda slots)."""
from minires.backend import get_array_module

from .modules import launch


def _geometry(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    from ..im2col import conv_out_size  # here: kernels/im2col.py imports this module to register it
    oh, ow = conv_out_size(h, kh, sh, ph, dh), conv_out_size(w, kw, sw, pw, dw)
    return n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, out=None):
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    geometry = _geometry(*x.shape, kh, kw, sh, sw, ph, pw, dh, dw)
    shape = x.shape[:2] + (kh, kw) + geometry[6:8]
    col = xp.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    launch("im2col", "im2col", x.dtype, col.size, (x, col, *geometry))
    return col


def col2im(col, h, w, sh, sw, ph, pw, dh, dw):
    xp = get_array_module(col)
    col = xp.ascontiguousarray(col)
    n, c, kh, kw = col.shape[:4]
    x = xp.empty((n, c, h, w), dtype=col.dtype)
    launch("im2col", "col2im", col.dtype, x.size, (col, x, *_geometry(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw)))
    return x
