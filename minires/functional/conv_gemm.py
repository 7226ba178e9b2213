"""conv2d on the GPU: the whole batch's columns as one (K, N P) matrix and one GEMM per product.

Notation as in functional/conv.py (K = C KH KW, P = OH OW, groups = 1). kernels/im2col.py's rows order
unfolds x (N, C, H, W) into col (C, KH, KW, N, OH, OW), i.e. a (K, N P) matrix, so that
    y_cn  = W @ col                     (OC, K) @ (K, N P): one cuBLAS GEMM for the batch
    dW    = gy_cn @ col^T               (OC, N P) @ (N P, K)
    dcol  = W^T @ gy_cn,   dx = col2im(dcol),   db = sum of gy_cn over its columns
where y_cn is y with its channel axis first: (OC, N, OH, OW) memory. The output is that memory seen as
(N, OC, OH, OW), a strided view rather than a copy: the batch-norm kernels read it in place, and a gradient
that comes back in the same layout (the batch-norm writes dx laid out as its input) is gy_cn with no copy.
A batched matmul over N would need no transposes, but CuPy builds pointer arrays for it with extra
launches; one GEMM is one launch. ``applies``: the CUDA kernels are in force (CuPy arrays, or
``kernels.using("cuda")``) and groups = 1; elsewhere functional/conv.py or conv_direct.py runs.
"""
import contextlib

from .. import backend, kernels
from ..function import Function
from ..kernels.conv_columns import workspace
from ..memory_format import Layout


def applies(x, groups):
    """For the Tensor x of a convolution with ``groups``."""
    return groups == 1 and kernels.cuda_in_force(backend.get_array_module(x.data))


class GemmConv2d(Function):
    name = "conv2d"
    fresh_input_grads = True  # dx, dW, db: new arrays (views of new arrays at most)

    def forward(self, x, weight, bias, window):
        xp = backend.get_array_module(x)
        self.layout, self.window = Layout.of(x), window
        x = self.layout.nchw(x)
        n, oc, (oh, ow) = x.shape[0], weight.shape[0], window.out
        self.save_for_backward(x, weight)
        with self._columns(x) as col:                           # (K, N P)
            y_cn = xp.matmul(weight.reshape(oc, -1), col)       # y = W col: (OC, N P)
        if bias is not None:
            y_cn += bias.reshape(oc, 1)                         # y = W col + b
        y = y_cn.reshape(oc, n, oh, ow).transpose(1, 0, 2, 3)  # (N, OC, OH, OW) view of (OC, N, OH, OW)
        return self.layout.restore(y)

    def backward(self, g):
        x, weight = self.saved_tensors
        xp = backend.get_array_module(g)
        need_x, need_w, need_b = self.needs_input_grad
        g = self.layout.nchw(g)
        oc, (n, c, h, w) = weight.shape[0], x.shape
        gy_cn = xp.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(oc, -1)  # (OC, N P); free when laid out as y
        grad_b = gy_cn.sum(axis=1) if need_b else None                          # db = sum gy
        grad_w = grad_x = None
        if need_w:
            with self._columns(x) as col:
                grad_w = xp.matmul(gy_cn, col.T).reshape(weight.shape)          # dW = gy col^T
            grad_w = Layout.of(weight).restore(grad_w)  # a gradient is laid out like its weight, as in torch
        if need_x:
            (kh, kw), (oh, ow) = self.window.kernel, self.window.out
            w_t = weight.reshape(oc, -1).T                                      # (K, OC)
            with workspace.lease(xp, w_t.shape[0] * gy_cn.shape[1], g.dtype) as buffer:
                dcol = xp.matmul(w_t, gy_cn, out=buffer.reshape(w_t.shape[0], -1))  # dcol = W^T gy
                grad_x = kernels.pick("col2im_rows", xp)(dcol.reshape(c, kh, kw, n, oh, ow), h, w,
                                                         *self.window.stride, *self.window.padding,
                                                         *self.window.dilation)
            grad_x = self.layout.restore(grad_x)
        return grad_x, grad_w, grad_b

    @contextlib.contextmanager
    def _columns(self, x):
        """x's columns (K, N P), in the lent workspace for the ``with`` block."""
        xp, w = backend.get_array_module(x), self.window
        n, c = x.shape[:2]
        k, columns = c * w.kernel[0] * w.kernel[1], n * w.out[0] * w.out[1]
        with workspace.lease(xp, k * columns, x.dtype) as buffer:
            col = kernels.pick("im2col_rows", xp)(x, *w.kernel, *w.stride, *w.padding, *w.dilation, out=buffer)
            yield col.reshape(k, columns)
