"""Batch normalisation over the channel axis of (N, C, M) arrays (M = H*W; the Function reshapes NCHW).

Training (Ioffe & Szegedy 2015, PyTorch's conventions): per channel c, over the N*M values of that channel,
    mean_c = avg(x),   var_c = avg((x - mean_c)^2)  (biased),   inv_std_c = 1 / sqrt(var_c + eps)
    x_hat = (x - mean_c) * inv_std_c,   y = gamma_c * x_hat + beta_c
Backward, fused into the three-term form with one pass for the two sums and one for dx:
    dbeta_c  = sum(g),   dgamma_c = sum(g * x_hat)
    dx = gamma_c * inv_std_c / K * (K * g - dbeta_c - x_hat * dgamma_c)      (K = N*M values per channel)
x_hat is recomputed from x (which the graph keeps anyway) instead of being stored.
Evaluation: the running statistics are constants, so y is affine in x and
    dx = gamma_c * inv_std_c * g,   dgamma_c = sum(g * x_hat),   dbeta_c = sum(g).

Signatures (both flavours):
    batchnorm_forward_train(x, gamma, beta, eps, running=None) -> y, mean, var (biased), inv_std
        running = (running_mean, running_var, momentum) move in place (update_running)
    batchnorm_forward_eval(x, gamma, beta, mean, var, eps) -> y
    batchnorm_backward(g, x, gamma, mean, inv_std) -> dx, dgamma, dbeta        (training)
    batchnorm_backward_eval(g, x, gamma, mean, inv_std) -> dx, dgamma, dbeta   (evaluation)
Statistics are accumulated in float64 and returned in x's dtype. The numba forward gets both moments in one
pass (shifted sums); the reference computes the mean first, then the variance of the centred values, and
so does the CUDA version (kernels/cuda/batchnorm.cu, launched by kernels/cuda/batchnorm.py), which
updates the running statistics inside its statistics kernel.
"""
import math

import numpy as np

from minires.backend import get_array_module

from .jit import parallel_jit, prange


def _per_channel(v):
    return v.reshape(1, -1, 1)  # (C,) -> (1, C, 1), broadcasting over N and M


def update_running(running, mean, var, count):
    """running = (running_mean, running_var, momentum) or None: running = (1 - momentum) running + momentum
    batch, in place; the variance unbiased, as PyTorch keeps it. Either array may be None (not tracked)."""
    if running is None:
        return
    running_mean, running_var, momentum = running
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
    if running_var is not None:
        running_var *= 1 - momentum
        running_var += momentum * var * (count / (count - 1))


def updating_running(forward_train):
    """A compiled training forward (x, gamma, beta, eps, ...) that also takes running=(running_mean,
    running_var, momentum) and updates them after it, as the references do (the CUDA version does it in its
    own launch). None stays None (no numba)."""
    if forward_train is None:
        return None

    def forward(x, gamma, beta, eps, *rest, running=None):
        y, mean, var, inv_std = forward_train(x, gamma, beta, eps, *rest)
        if running is not None:
            update_running(running, mean, var, x.size // gamma.size)
        return y, mean, var, inv_std
    forward.__wrapped__ = forward_train
    return forward


# --- NumPy reference ------------------------------------------------------------------------------

def batchnorm_forward_train_reference(x, gamma, beta, eps, running=None):
    xp = get_array_module(x)
    axes = (0, 2)
    mean = x.mean(axis=axes, dtype=xp.float64)  # (C,)
    centred = x - _per_channel(mean).astype(x.dtype)  # (N, C, M)
    var = (centred * centred).mean(axis=axes, dtype=xp.float64)  # (C,), biased
    inv_std = 1.0 / xp.sqrt(var + eps)
    y = centred * _per_channel(inv_std * gamma).astype(x.dtype) + _per_channel(beta).astype(x.dtype)
    mean, var = mean.astype(x.dtype), var.astype(x.dtype)
    update_running(running, mean, var, x.size // gamma.size)
    return y, mean, var, inv_std.astype(x.dtype)


def batchnorm_forward_eval_reference(x, gamma, beta, mean, var, eps):
    xp = get_array_module(x)
    scale = gamma / xp.sqrt(var + eps)  # y = x * scale + shift, per channel
    shift = beta - mean * scale
    return x * _per_channel(scale) + _per_channel(shift)


def batchnorm_backward_reference(g, x, gamma, mean, inv_std):
    xp = get_array_module(g)
    axes = (0, 2)
    count = x.shape[0] * x.shape[2]
    x_hat = (x - _per_channel(mean)) * _per_channel(inv_std)
    dbeta = g.sum(axis=axes, dtype=xp.float64)
    dgamma = (g * x_hat).sum(axis=axes, dtype=xp.float64)
    scale = _per_channel(gamma * inv_std / count)
    dx = scale * (count * g - _per_channel(dbeta).astype(g.dtype) - x_hat * _per_channel(dgamma).astype(g.dtype))
    return dx.astype(g.dtype), dgamma.astype(g.dtype), dbeta.astype(g.dtype)


def batchnorm_backward_eval_reference(g, x, gamma, mean, inv_std):
    x_hat = (x - _per_channel(mean)) * _per_channel(inv_std)
    dx = g * _per_channel(gamma * inv_std)
    return dx, (g * x_hat).sum(axis=(0, 2)), g.sum(axis=(0, 2))


# --- numba: one channel per parallel task ---------------------------------------------------------

def batchnorm_forward_train_loops(x, gamma, beta, eps):
    x = np.ascontiguousarray(x)
    n, c, m = x.shape
    count = n * m
    y = np.empty_like(x)
    mean, var, inv_std = np.empty(c, dtype=x.dtype), np.empty(c, dtype=x.dtype), np.empty(c, dtype=x.dtype)
    for ch in prange(c):
        # One pass for both moments. Shifting by the channel's first value keeps E[d^2] - E[d]^2 from
        # cancelling catastrophically when the mean is large compared to the spread.
        shift = x[0, ch, 0]
        total = 0.0
        squares = 0.0
        for b in range(n):
            for k in range(m):
                d = x[b, ch, k] - shift
                total += d
                squares += d * d
        mu_shifted = total / count
        mu = shift + mu_shifted
        sigma2 = max(squares / count - mu_shifted * mu_shifted, 0.0)
        istd = 1.0 / math.sqrt(sigma2 + eps)
        scale = gamma[ch] * istd
        offset = beta[ch] - mu * scale
        for b in range(n):
            for k in range(m):
                y[b, ch, k] = x[b, ch, k] * scale + offset
        mean[ch], var[ch], inv_std[ch] = mu, sigma2, istd
    return y, mean, var, inv_std


def batchnorm_forward_eval_loops(x, gamma, beta, mean, var, eps):
    x = np.ascontiguousarray(x)
    n, c, m = x.shape
    y = np.empty_like(x)
    for ch in prange(c):
        scale = gamma[ch] / math.sqrt(var[ch] + eps)
        shift = beta[ch] - mean[ch] * scale
        for b in range(n):
            for k in range(m):
                y[b, ch, k] = x[b, ch, k] * scale + shift
    return y


def batchnorm_backward_loops(g, x, gamma, mean, inv_std):
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    n, c, m = x.shape
    count = n * m
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
    for ch in prange(c):
        mu, istd = mean[ch], inv_std[ch]
        sum_g = 0.0
        sum_g_xhat = 0.0
        for b in range(n):
            for k in range(m):
                sum_g += g[b, ch, k]
                sum_g_xhat += g[b, ch, k] * (x[b, ch, k] - mu)
        sum_g_xhat *= istd
        scale = gamma[ch] * istd / count
        for b in range(n):
            for k in range(m):
                x_hat = (x[b, ch, k] - mu) * istd
                dx[b, ch, k] = scale * (count * g[b, ch, k] - sum_g - x_hat * sum_g_xhat)
        dgamma[ch], dbeta[ch] = sum_g_xhat, sum_g
    return dx, dgamma, dbeta


def batchnorm_backward_eval_loops(g, x, gamma, mean, inv_std):
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    n, c, m = x.shape
    dx = np.empty_like(g)
    dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
    for ch in prange(c):
        mu, istd = mean[ch], inv_std[ch]
        scale = gamma[ch] * istd
        sum_g = 0.0
        sum_g_xhat = 0.0
        for b in range(n):
            for k in range(m):
                sum_g += g[b, ch, k]
                sum_g_xhat += g[b, ch, k] * (x[b, ch, k] - mu) * istd
                dx[b, ch, k] = g[b, ch, k] * scale
        dgamma[ch], dbeta[ch] = sum_g_xhat, sum_g
    return dx, dgamma, dbeta


batchnorm_forward_train_numba = updating_running(parallel_jit(batchnorm_forward_train_loops, reassociate=True))
batchnorm_forward_eval_numba = parallel_jit(batchnorm_forward_eval_loops)
batchnorm_backward_numba = parallel_jit(batchnorm_backward_loops, reassociate=True)
batchnorm_backward_eval_numba = parallel_jit(batchnorm_backward_eval_loops, reassociate=True)
