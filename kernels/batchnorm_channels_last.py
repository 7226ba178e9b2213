"""Batch normalisation on channels-last memory: x is the (P, C) matrix of an NHWC array (P = N*H*W pixels, one
row each), and the statistics of channel c run down column c. The maths, the signatures and the float64
statistics are batchnorm.py's; only the memory order differs.

The NumPy reference *is* batchnorm.py's reference, handed the same memory as a (1, C, P) view (no copy). The
numba kernels split the pixels into row chunks, one parallel task each: every task sums its rows into its
own per-channel partial sums (float64), the partials are added, then one more parallel pass over the rows
writes the output. A row is C contiguous values, so the inner loop over channels is a vector loop.

Signatures (both flavours), x, g, y, dx of shape (P, C):
    batchnorm_channels_last_forward_train(x, gamma, beta, eps) -> y, mean, var (biased), inv_std
    batchnorm_channels_last_forward_eval(x, gamma, beta, mean, var, eps) -> y
    batchnorm_channels_last_backward(g, x, gamma, mean, inv_std) -> dx, dgamma, dbeta
    batchnorm_channels_last_backward_eval(g, x, gamma, mean, inv_std) -> dx, dgamma, dbeta
"""
import numpy as np

from . import batchnorm as nchw
from .jit import NUMBA, parallel_jit, prange, serial_jit

ROWS_PER_CHUNK = 2048  # enough work per task to hide the partial sums, enough tasks to balance the cores


# --- NumPy reference: batchnorm.py's, on a (1, C, P) view of the same memory -------------------------------

def _columns(a):
    return a.T[None]  # (P, C) -> (1, C, P)


def _rows(a):
    return a[0].T  # (1, C, P) -> (P, C)


def batchnorm_channels_last_forward_train_reference(x, gamma, beta, eps, running=None):
    y, mean, var, inv_std = nchw.batchnorm_forward_train_reference(_columns(x), gamma, beta, eps, running)
    return _rows(y), mean, var, inv_std


def batchnorm_channels_last_forward_eval_reference(x, gamma, beta, mean, var, eps):
    return _rows(nchw.batchnorm_forward_eval_reference(_columns(x), gamma, beta, mean, var, eps))


def batchnorm_channels_last_backward_reference(g, x, gamma, mean, inv_std):
    dx, dgamma, dbeta = nchw.batchnorm_backward_reference(_columns(g), _columns(x), gamma, mean, inv_std)
    return _rows(dx), dgamma, dbeta


def batchnorm_channels_last_backward_eval_reference(g, x, gamma, mean, inv_std):
    dx, dgamma, dbeta = nchw.batchnorm_backward_eval_reference(_columns(g), _columns(x), gamma, mean, inv_std)
    return _rows(dx), dgamma, dbeta


# --- numba: row chunks in parallel, per-chunk partial sums ------------------------------------------------

def chunk_bounds(rows, chunk):
    """First and one-past-last row of chunk ``chunk``."""
    return chunk * ROWS_PER_CHUNK, min(rows, (chunk + 1) * ROWS_PER_CHUNK)


def column_sums(a, a_shift, b, b_shift):
    """Per column c: (sum of (a - a_shift_c), sum of (a - a_shift_c)(b - b_shift_c)), float64. The moments
    of x are column_sums(x, shift, x, shift); backward's sums are column_sums(g, 0, x, mean)."""
    rows, channels = a.shape
    chunks = -(-rows // ROWS_PER_CHUNK)
    partial = np.zeros((chunks, 2, channels))
    for k in prange(chunks):
        first, last = chunk_bounds(rows, k)
        for i in range(first, last):
            for c in range(channels):
                d = a[i, c] - a_shift[c]
                partial[k, 0, c] += d
                partial[k, 1, c] += d * (b[i, c] - b_shift[c])
    return partial.sum(axis=0)


def scale_shift_rows(x, scale, offset, y):
    """y = x * scale + offset per column, row chunks in parallel."""
    rows, channels = x.shape
    for k in prange(-(-rows // ROWS_PER_CHUNK)):
        first, last = chunk_bounds(rows, k)
        for i in range(first, last):
            for c in range(channels):
                y[i, c] = x[i, c] * scale[c] + offset[c]


def moments(x, eps):
    """mean, biased var and 1 / sqrt(var + eps) per column, float64, from one pass of column_sums."""
    # shifted by each channel's first value, as batchnorm.py: E[d^2] - E[d]^2 then does not cancel
    shift = x[0].astype(np.float64)
    sums = column_sums(x, shift, x, shift)
    mean_shifted = sums[0] / x.shape[0]
    var = np.maximum(sums[1] / x.shape[0] - mean_shifted * mean_shifted, 0.0)
    return shift + mean_shifted, var, 1.0 / np.sqrt(var + eps)


def batchnorm_channels_last_forward_train_loops(x, gamma, beta, eps):
    mean, var, inv_std = moments(x, eps)
    scale = gamma * inv_std
    y = np.empty_like(x)
    scale_shift_rows(x, scale.astype(x.dtype), (beta - mean * scale).astype(x.dtype), y)
    return y, mean.astype(x.dtype), var.astype(x.dtype), inv_std.astype(x.dtype)


def batchnorm_channels_last_forward_eval_loops(x, gamma, beta, mean, var, eps):
    scale = gamma / np.sqrt(var + eps)
    y = np.empty_like(x)
    scale_shift_rows(x, scale, beta - mean * scale, y)
    return y


def gradient_sums(g, x, mean):
    """(sum of g, sum of g * (x - mean)) per column, float64."""
    return column_sums(g, np.zeros(g.shape[1]), x, mean)


def affine_gradient(g, x, mean, k_g, k_0, k_x, dx):
    """dx = k_g g + k_0 + k_x (x - mean) per column, row chunks in parallel."""
    rows, channels = x.shape
    for k in prange(-(-rows // ROWS_PER_CHUNK)):
        first, last = chunk_bounds(rows, k)
        for i in range(first, last):
            for c in range(channels):
                dx[i, c] = k_g[c] * g[i, c] + k_0[c] + k_x[c] * (x[i, c] - mean[c])


def batchnorm_channels_last_backward_loops(g, x, gamma, mean, inv_std):
    rows = x.shape[0]
    sums = gradient_sums(g, x, mean)
    dbeta, dgamma = sums[0], sums[1] * inv_std  # sum(g), sum(g * x_hat)
    # batchnorm.py's three-term form, dx = gamma inv_std / K (K g - dbeta - x_hat dgamma), as one affine map
    a = gamma * inv_std
    dx = np.empty_like(g)
    affine_gradient(g, x, mean, a.astype(g.dtype), (-a * dbeta / rows).astype(g.dtype),
                     (-a * inv_std * dgamma / rows).astype(g.dtype), dx)
    return dx, dgamma.astype(g.dtype), dbeta.astype(g.dtype)


def batchnorm_channels_last_backward_eval_loops(g, x, gamma, mean, inv_std):
    sums = gradient_sums(g, x, mean)
    dx = np.empty_like(g)
    scale_shift_rows(g, gamma * inv_std, np.zeros_like(gamma), dx)  # dx = gamma inv_std g: affine in x
    return dx, (sums[1] * inv_std).astype(g.dtype), sums[0].astype(g.dtype)


chunk_bounds = serial_jit(chunk_bounds) or chunk_bounds  # the parallel passes call it
column_sums = parallel_jit(column_sums) or column_sums
scale_shift_rows = parallel_jit(scale_shift_rows) or scale_shift_rows
affine_gradient = parallel_jit(affine_gradient) or affine_gradient
# The numba flavour: the drivers above are plain Python around these parallel passes (a few per-channel
# vector operations between them), so "_loops" is already the numba version wherever numba imports.
batchnorm_channels_last_forward_train_numba = nchw.updating_running(batchnorm_channels_last_forward_train_loops) \
    if NUMBA else None
batchnorm_channels_last_forward_eval_numba = batchnorm_channels_last_forward_eval_loops if NUMBA else None
batchnorm_channels_last_backward_numba = batchnorm_channels_last_backward_loops if NUMBA else None
batchnorm_channels_last_backward_eval_numba = batchnorm_channels_last_backward_eval_loops if NUMBA else None
