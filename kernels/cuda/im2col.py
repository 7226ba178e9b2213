"""Launch code for im2col.cu, with the signatures of kernels/im2col.py's references (its cuda slots): the
images-first order (N, C, KH, KW, OH, OW) and the rows order (C, KH, KW, N, OH, OW)."""
import contextlib
from typing import Any, NamedTuple

from minires.backend import get_array_module

from ..conv_columns import workspace
from ..im2col import conv_by_columns, conv_out_size
from .modules import launch


def _geometry(n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw):
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


# --- conv2d --------------------------------------------------------------------------------------------
# conv2d on the GPU: the whole batch's columns as one (K, N P) matrix and one GEMM per product.
#
# Notation as in kernels/im2col.py's conv2d (K = C KH KW, P = OH OW). im2col.cu's rows order unfolds x (N, C, H, W) into
# col (C, KH, KW, N, OH, OW), i.e. a (K, N P) matrix, so that
#     y_cn  = W @ col                     (OC, K) @ (K, N P): one cuBLAS GEMM for the batch
#     dW    = gy_cn @ col^T               (OC, N P) @ (N P, K)
#     dcol  = W^T @ gy_cn,   dx = col2im(dcol),   db = sum of gy_cn over its columns
# where y_cn is y with its channel axis first: (OC, N, OH, OW) memory. The output is that memory seen as
# (N, OC, OH, OW), a strided view rather than a copy: the batch-norm kernels read it in place, and a gradient
# that comes back in the same layout (the batch-norm writes dx laid out as its input) is gy_cn with no copy.
# A batched matmul over N would need no transposes, but CuPy builds pointer arrays for it with extra
# launches; one GEMM is one launch. Grouped convolutions run kernels/im2col.py's per-image products on CUDA's
# im2col instead. Signatures: kernels/im2col.py's conv2d_forward/backward.


_grouped_forward, _grouped_backward = conv_by_columns(im2col, col2im)


class _Batch(NamedTuple):
    """What the one-GEMM backward reads (a grouped convolution saves conv_by_columns' state instead)."""
    x: Any
    weight: Any
    window: Any


def conv2d_forward(x, weight, bias, window, groups):
    if groups != 1:
        return _grouped_forward(x, weight, bias, window, groups)
    xp = get_array_module(x)
    n, oc, (oh, ow) = x.shape[0], weight.shape[0], window.out
    with _columns(x, window) as col:                        # (K, N P)
        y_cn = xp.matmul(weight.reshape(oc, -1), col)       # y = W col: (OC, N P)
    if bias is not None:
        y_cn += bias.reshape(oc, 1)                         # y = W col + b
    y = y_cn.reshape(oc, n, oh, ow).transpose(1, 0, 2, 3)  # (N, OC, OH, OW) view of (OC, N, OH, OW)
    return y, _Batch(x, weight, window)


def conv2d_backward(saved, g, needs):
    if not isinstance(saved, _Batch):
        return _grouped_backward(saved, g, needs)
    x, weight, window = saved
    xp = get_array_module(g)
    need_x, need_w, need_b = needs
    oc, (n, c, h, w) = weight.shape[0], x.shape
    gy_cn = xp.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(oc, -1)  # (OC, N P); free when laid out as y
    grad_b = gy_cn.sum(axis=1) if need_b else None                          # db = sum gy
    grad_w = grad_x = None
    if need_w:
        with _columns(x, window) as col:
            grad_w = xp.matmul(gy_cn, col.T).reshape(weight.shape)          # dW = gy col^T
    if need_x:
        (kh, kw), (oh, ow) = window.kernel, window.out
        w_t = weight.reshape(oc, -1).T                                      # (K, OC)
        with workspace.lease(xp, w_t.shape[0] * gy_cn.shape[1], g.dtype) as buffer:
            dcol = xp.matmul(w_t, gy_cn, out=buffer.reshape(w_t.shape[0], -1))  # dcol = W^T gy
            grad_x = col2im_rows(dcol.reshape(c, kh, kw, n, oh, ow), h, w, *window.stride, *window.padding,
                                 *window.dilation)
    return grad_x, grad_w, grad_b


@contextlib.contextmanager
def _columns(x, window):
    """x's columns (K, N P), in the lent workspace for the ``with`` block."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    k, columns = c * window.kernel[0] * window.kernel[1], n * window.out[0] * window.out[1]
    with workspace.lease(xp, k * columns, x.dtype) as buffer:
        col = im2col_rows(x, *window.kernel, *window.stride, *window.padding, *window.dilation, out=buffer)
        yield col.reshape(k, columns)
