"""Launch code for im2col.cu, with the signatures of kernels/im2col.py's references (its cuda slots): the
images-first order (N, C, KH, KW, OH, OW) and the rows order (C, KH, KW, N, OH, OW)."""
from minires.backend import get_array_module

from .modules import launch


def _geometry(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    from ..im2col import conv_out_size  # here: kernels/im2col.py imports this module to register it
    oh, ow = conv_out_size(h, kh, sh, ph, dh), conv_out_size(w, kw, sw, pw, dw)
    return n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, out=None):
    return _unfold("im2col", x, kh, kw, sh, sw, ph, pw, dh, dw, out)


def im2col_rows(x, kh, kw, sh, sw, ph, pw, dh, dw, out=None):
    return _unfold("im2col_rows", x, kh, kw, sh, sw, ph, pw, dh, dw, out)


def col2im(col, h, w, sh, sw, ph, pw, dh, dw):
    n, c, kh, kw = col.shape[:4]
    return _fold("col2im", col, (n, c, h, w, kh, kw), sh, sw, ph, pw, dh, dw)


def col2im_rows(col, h, w, sh, sw, ph, pw, dh, dw):
    c, kh, kw, n = col.shape[:4]
    return _fold("col2im_rows", col, (n, c, h, w, kh, kw), sh, sw, ph, pw, dh, dw)


def _unfold(kernel, x, kh, kw, sh, sw, ph, pw, dh, dw, out):
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    geometry = _geometry(*x.shape, kh, kw, sh, sw, ph, pw, dh, dw)
    n, c, oh, ow = x.shape[0], x.shape[1], geometry[6], geometry[7]
    shape = (n, c, kh, kw, oh, ow) if kernel == "im2col" else (c, kh, kw, n, oh, ow)
    col = xp.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    launch("im2col", kernel, x.dtype, col.size, (x, col, *geometry))
    return col


def _fold(kernel, col, sizes, sh, sw, ph, pw, dh, dw):
    xp = get_array_module(col)
    col = xp.ascontiguousarray(col)
    x = xp.empty(sizes[:4], dtype=col.dtype)
    launch("im2col", kernel, col.dtype, x.size, (col, x, *_geometry(*sizes, sh, sw, ph, pw, dh, dw)))
    return x
