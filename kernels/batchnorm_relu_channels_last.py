"""Batch-norm, then an optional residual add, then ReLU, fused on channels-last memory: one pass for the
statistics and one that writes y forward; one pass for the gradient sums and one that writes dx backward.
Unfused, the same work reads and writes the activations three times each way (batch_norm, residual_add, relu).

    y = max(BN(x) + residual, 0)                       (no residual: max(BN(x), 0))
Backward, with gm = g where y > 0 and 0 elsewhere (ReLU's threshold gradient; a NaN y passes g on):
    dx = BN's backward applied to gm                   (batchnorm.py's three-term form)
    d residual = gm                                     (the join hands the same gradient to the shortcut)

x, y, g, residual are (P, C) pixel matrices as in batchnorm_channels_last.py, whose statistics pass and row
chunks this file reuses. Signatures (both flavours):
    batchnorm_relu_channels_last_forward_train(x, gamma, beta, eps, residual, running=None) -> y, mean, var, inv_std
    batchnorm_relu_channels_last_forward_eval(x, gamma, beta, mean, var, eps, residual) -> y
    batchnorm_relu_channels_last_backward(g, y, x, gamma, mean, inv_std, with_gm) -> dx, dgamma, dbeta, gm
    batchnorm_relu_channels_last_backward_eval(g, y, x, gamma, mean, inv_std, with_gm) -> dx, dgamma, dbeta, gm
residual may be None; gm is None unless ``with_gm`` (only a residual needs it). The NumPy reference is the unfused composition of the references, op by op.
"""
import numpy as np

from minires.backend import get_array_module

from . import batchnorm_channels_last as plain
from .batchnorm import updating_running
from .batchnorm_channels_last import ROWS_PER_CHUNK, chunk_bounds, moments
from .jit import NUMBA, parallel_jit, prange


# --- NumPy reference: the unfused ops, one after the other ---------------------------------------------

def add_relu(y, residual):
    return get_array_module(y).maximum(y if residual is None else y + residual, 0)


def relu_gradient(g, y):
    return get_array_module(g).where(y <= 0, 0, g)


def composed_references(forward_train, forward_eval, backward, backward_eval):
    """The four references of a fused batch-norm (+ residual) + ReLU family, composed from the batch-norm
    references of one memory layout (this file's pixel matrices, or batchnorm_relu.py's (N, C, M))."""
    def forward_train_reference(x, gamma, beta, eps, residual, running=None):
        y, mean, var, inv_std = forward_train(x, gamma, beta, eps, running)
        return add_relu(y, residual), mean, var, inv_std

    def forward_eval_reference(x, gamma, beta, mean, var, eps, residual):
        return add_relu(forward_eval(x, gamma, beta, mean, var, eps), residual)

    def backward_reference(g, y, x, gamma, mean, inv_std, with_gm):
        gm = relu_gradient(g, y)
        return (*backward(gm, x, gamma, mean, inv_std), gm if with_gm else None)

    def backward_eval_reference(g, y, x, gamma, mean, inv_std, with_gm):
        gm = relu_gradient(g, y)
        return (*backward_eval(gm, x, gamma, mean, inv_std), gm if with_gm else None)

    return forward_train_reference, forward_eval_reference, backward_reference, backward_eval_reference


(batchnorm_relu_channels_last_forward_train_reference, batchnorm_relu_channels_last_forward_eval_reference,
 batchnorm_relu_channels_last_backward_reference, batchnorm_relu_channels_last_backward_eval_reference) = \
    composed_references(plain.batchnorm_channels_last_forward_train_reference,
                        plain.batchnorm_channels_last_forward_eval_reference,
                        plain.batchnorm_channels_last_backward_reference,
                        plain.batchnorm_channels_last_backward_eval_reference)


# --- numba: the passes ------------------------------------------------------------------------------------

def normalise_add_relu_rows(x, scale, offset, residual, has_residual, y):
    """y = max(x scale + offset (+ residual), 0) per column; a NaN stays NaN, as xp.maximum keeps it."""
    rows, channels = x.shape
    for k in prange(-(-rows // ROWS_PER_CHUNK)):
        first, last = chunk_bounds(rows, k)
        for i in range(first, last):
            for c in range(channels):
                v = x[i, c] * scale[c] + offset[c]
                if has_residual:
                    v += residual[i, c]
                y[i, c] = 0 if v <= 0 else v


def masked_gradient_sums(g, y, x, mean):
    """(sum of gm, sum of gm (x - mean)) per column, float64, with gm = 0 where y <= 0, else g."""
    rows, channels = x.shape
    chunks = -(-rows // ROWS_PER_CHUNK)
    partial = np.zeros((chunks, 2, channels))
    for k in prange(chunks):
        first, last = chunk_bounds(rows, k)
        for i in range(first, last):
            for c in range(channels):
                gv = np.float32(0) if y[i, c] <= 0 else g[i, c]  # a select, not a branch: the loop vectorises
                partial[k, 0, c] += gv
                partial[k, 1, c] += gv * (x[i, c] - mean[c])
    return partial.sum(axis=0)


def masked_gradient(g, y, x, mean, k_g, k_0, k_x, dx, gm, with_gm):
    """dx = k_g gm + k_0 + k_x (x - mean), gm = 0 where y <= 0, else g; gm itself is written too when
    ``with_gm`` (the residual's gradient), in the same pass."""
    rows, channels = x.shape
    for k in prange(-(-rows // ROWS_PER_CHUNK)):
        first, last = chunk_bounds(rows, k)
        for i in range(first, last):
            for c in range(channels):
                gv = np.float32(0) if y[i, c] <= 0 else g[i, c]
                dx[i, c] = k_g[c] * gv + k_0[c] + k_x[c] * (x[i, c] - mean[c])
                if with_gm:
                    gm[i, c] = gv


def masked_gradient_eval(g, y, k_g, dx, gm):
    """gm = 0 where y <= 0, else g; dx = k_g gm (evaluation: y is affine in x)."""
    rows, channels = g.shape
    for k in prange(-(-rows // ROWS_PER_CHUNK)):
        first, last = chunk_bounds(rows, k)
        for i in range(first, last):
            for c in range(channels):
                gv = np.float32(0) if y[i, c] <= 0 else g[i, c]
                gm[i, c] = gv
                dx[i, c] = k_g[c] * gv


def batchnorm_relu_channels_last_forward_train_loops(x, gamma, beta, eps, residual):
    mean, var, inv_std = moments(x, eps)
    scale = gamma * inv_std
    y = np.empty_like(x)
    normalise_add_relu_rows(x, scale.astype(x.dtype), (beta - mean * scale).astype(x.dtype),
                            x if residual is None else residual, residual is not None, y)
    return y, mean.astype(x.dtype), var.astype(x.dtype), inv_std.astype(x.dtype)


def batchnorm_relu_channels_last_forward_eval_loops(x, gamma, beta, mean, var, eps, residual):
    scale = gamma / np.sqrt(var + eps)
    y = np.empty_like(x)
    normalise_add_relu_rows(x, scale, beta - mean * scale, x if residual is None else residual,
                            residual is not None, y)
    return y


def batchnorm_relu_channels_last_backward_loops(g, y, x, gamma, mean, inv_std, with_gm):
    rows = x.shape[0]
    sums = masked_gradient_sums(g, y, x, mean)
    dbeta, dgamma = sums[0], sums[1] * inv_std
    a = gamma * inv_std  # batchnorm_channels_last.py's affine form of the three-term backward, on gm
    dx, gm = np.empty_like(g), np.empty_like(g) if with_gm else g[:0]  # gm: ReLU's threshold gradient
    masked_gradient(g, y, x, mean, a.astype(g.dtype), (-a * dbeta / rows).astype(g.dtype),
                    (-a * inv_std * dgamma / rows).astype(g.dtype), dx, gm, with_gm)
    return dx, dgamma.astype(g.dtype), dbeta.astype(g.dtype), gm if with_gm else None


def batchnorm_relu_channels_last_backward_eval_loops(g, y, x, gamma, mean, inv_std, with_gm):
    sums = masked_gradient_sums(g, y, x, mean)
    dx, gm = np.empty_like(g), np.empty_like(g)
    masked_gradient_eval(g, y, (gamma * inv_std).astype(g.dtype), dx, gm)
    return dx, (sums[1] * inv_std).astype(g.dtype), sums[0].astype(g.dtype), gm if with_gm else None


normalise_add_relu_rows = parallel_jit(normalise_add_relu_rows) or normalise_add_relu_rows
masked_gradient_sums = parallel_jit(masked_gradient_sums) or masked_gradient_sums
masked_gradient = parallel_jit(masked_gradient) or masked_gradient
masked_gradient_eval = parallel_jit(masked_gradient_eval) or masked_gradient_eval
# The numba flavour: the drivers are plain Python around the passes, as in batchnorm_channels_last.py
batchnorm_relu_channels_last_forward_train_numba = \
    updating_running(batchnorm_relu_channels_last_forward_train_loops) if NUMBA else None
batchnorm_relu_channels_last_forward_eval_numba = batchnorm_relu_channels_last_forward_eval_loops if NUMBA else None
batchnorm_relu_channels_last_backward_numba = batchnorm_relu_channels_last_backward_loops if NUMBA else None
batchnorm_relu_channels_last_backward_eval_numba = batchnorm_relu_channels_last_backward_eval_loops if NUMBA else None
