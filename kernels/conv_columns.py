"""The column buffers of an im2col convolution — the memory policy that im2col.py's reference convolution leaves out of its
maths. Notation as in im2col.py; per convolution G groups, K = (C/G) KH KW rows and P = OH OW columns.

    columns = ConvColumns(x, window, groups, im2col, col2im)   # remembers x (and the unfold/fold kernels to
                                               # use); with keep_columns(), unfolds it now and keeps it
    with columns.lease() as col:               # col (N, G, K, P), valid inside the block only
        y = W @ col
    dW = columns.weight_gradient(gy)           # sum_n gy[n] @ col[n]^T -> (G, OC/G, K)
    dx = columns.fold(w_t, gy)                 # col2im(W^T @ gy) -> (N, C, H, W)

Keep or recompute the columns? Measured on a 2-core CPU at 128x16x32x32, 3x3, forward + backward
(benchmarks/bench_kernels.py, two runs): recomputing im2col in backward took 82.9 / 91.3 ms, keeping the
columns from forward 69.7 / 78.3 ms, so recomputing costs about 13 ms (15%) on this layer. Keeping them holds
one 72 MiB buffer per convolution from forward to backward, about 0.7 GiB across ResNet-20 at batch 128
(PyTorch keeps only the layer's input). Memory wins: by default backward recomputes the columns, and every
convolution borrows one column workspace per thread and dtype (grown to the largest size seen; a fresh 72 MiB
array costs 4-11 ms of page faults on every call). ``with keep_columns():`` switches to keeping them
(benchmarks time both).

The workspace is lent, never shared: ``lease()`` hands it out for one ``with`` block and refuses a second
lease while the first is open, so the column gradient of ``fold`` can never overwrite columns still in use.
A 1x1 convolution with stride 1 and no padding needs no columns at all: x itself is the column matrix, and
W^T @ gy is already dx.
"""
import contextlib
import threading

import numpy as np

from minires.backend import get_array_module
from minires.errors import AutogradError



class _Settings(threading.local):
    keep = False


_settings = _Settings()


@contextlib.contextmanager
def keep_columns(keep=True):
    """Inside the block, convolutions keep their columns from forward to backward instead of recomputing them."""
    previous, _settings.keep = _settings.keep, keep
    try:
        yield
    finally:
        _settings.keep = previous


class _Workspace(threading.local):
    """One reusable flat buffer per (array module, dtype), grown to the largest size asked for, lent to one
    borrower at a time."""

    def __init__(self):
        self.buffers, self.lent = {}, False

    @contextlib.contextmanager
    def lease(self, xp, size, dtype):
        if self.lent:
            raise AutogradError("conv2d: the column workspace is already lent out; finish with one column "
                                "buffer before asking for the next")
        key = (xp.__name__, np.dtype(dtype).str)
        buffer = self.buffers.get(key)
        if buffer is None or buffer.size < size:
            self.buffers.pop(key, None)  # free the smaller one before allocating the larger
            buffer = self.buffers[key] = xp.empty(size, dtype=dtype)
        self.lent = True
        try:
            yield buffer[:size]
        finally:
            self.lent = False

    def clear(self):
        self.buffers.clear()


workspace = _Workspace()


def clear_workspace():
    """Release this thread's column workspace (it is allocated again by the next convolution)."""
    workspace.clear()


class ConvColumns:
    """The im2col columns of one convolution's input, kept or recomputed on request (see the module docstring)."""

    def __init__(self, x, window, groups, im2col, col2im):
        self.x, self.window, self.groups = x, window, groups
        self.im2col, self.col2im = im2col, col2im  # numba's or CUDA's, as im2col.py / cuda/im2col.py ask
        self.xp = get_array_module(x)
        n, c, _, _ = x.shape
        (kh, kw), (oh, ow) = window.kernel, window.out
        self.shape = (n, groups, c // groups * kh * kw, oh * ow)  # (N, G, K, P)
        self.pointwise = window.kernel == (1, 1) and window.stride == (1, 1) and window.padding == (0, 0)
        self.kept = self._unfold(None) if _settings.keep and not self.pointwise else None

    @contextlib.contextmanager
    def lease(self):
        """The columns (N, G, K, P), for the ``with`` block only."""
        if self.pointwise:
            yield self.x.reshape(self.shape)
        elif self.kept is not None:
            yield self.kept
        else:
            with workspace.lease(self.xp, int(np.prod(self.shape)), self.x.dtype) as buffer:
                yield self._unfold(buffer)

    def _unfold(self, out):
        w = self.window
        col = self.im2col(self.x, *w.kernel, *w.stride, *w.padding, *w.dilation, out=out)
        return col.reshape(self.shape)

    def weight_gradient(self, gy):
        """dW[g] = sum_n gy[n, g] @ col[n, g]^T for gy (N, G, OC/G, P) -> (G, OC/G, K).

        Per-image products summed afterwards hold an (N, G, OC/G, K) intermediate: fine for early layers, but
        302 MB for ResNet-18's last stage at batch 32 (512 x 4608 per image). When that is larger than copying
        gy and col into (G, ., N P) layouts, one GEMM over all N P columns does it instead (and, with a long
        inner dimension, runs faster too)."""
        xp = self.xp
        n, groups, oc, p = gy.shape
        k = self.shape[2]
        with self.lease() as col:
            if n * oc * k <= (oc + k) * n * p:
                return xp.matmul(gy, col.swapaxes(-1, -2)).sum(axis=0)
            flat_gy = gy.transpose(1, 2, 0, 3).reshape(groups, oc, n * p)  # (G, OC/G, N P)
            flat_col = col.transpose(1, 2, 0, 3).reshape(groups, k, n * p)  # (G, K, N P)
            return xp.matmul(flat_gy, flat_col.swapaxes(-1, -2))

    def fold(self, w_t, gy):
        """dx = col2im(W^T @ gy) for w_t (G, K, OC/G) and gy (N, G, OC/G, P) -> (N, C, H, W)."""
        if self.pointwise:
            return self.xp.matmul(w_t, gy).reshape(self.x.shape)  # the column gradient is dx itself
        n, c, h, w = self.x.shape
        (kh, kw), (oh, ow) = self.window.kernel, self.window.out
        with workspace.lease(self.xp, int(np.prod(self.shape)), gy.dtype) as buffer:
            dcol = buffer.reshape(self.shape)
            self.xp.matmul(w_t, gy, out=dcol)  # (N, G, K, P)
            return self.col2im(dcol.reshape(n, c, kh, kw, oh, ow), h, w, *self.window.stride, *self.window.padding,
                          *self.window.dilation)
