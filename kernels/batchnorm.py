"""Batch normalisation over the channel axis of (N, C, M) arrays (M = H*W; the Function reshapes NCHW).

Training (Ioffe & Szegedy 2015, PyTorch's conventions): per channel c, over the N*M values of that channel,
    mean_c = avg(x),   var_c = avg((x - mean_c)^2)  (biased),   inv_std_c = 1 / sqrt(var_c + eps)
    x_hat = (x - mean_c) * inv_std_c,   y = gamma_c * x_hat + beta_c
Backward, fused into the three-term form with one pass for the two sums and one for dx:
    dbeta_c  = sum(g),   dgamma_c = sum(g * x_hat)
    dx = gamma_c * inv_std_c / K * (K * g - dbeta_c - x_hat * dgamma_c)      (K = N*M values per channel)
x_hat is recomputed from x (which the graph keeps anyway) instead of being stored.

Signatures (both flavours):
    batchnorm_forward_train(x, gamma, beta, eps) -> y, mean, var (biased), inv_std
    batchnorm_forward_eval(x, gamma, beta, mean, var, eps) -> y
    batchnorm_backward(g, x, gamma, mean, inv_std) -> dx, dgamma, dbeta
Statistics are accumulated in float64 and returned in x's dtype. The numba forward gets both moments in one
pass (shifted sums); the reference computes the mean first, then the variance of the centred values.
"""
import math

import numpy as np

from minires.backend import get_array_module

from .jit import numba_version, parallel_jit, prange
from .registry import register


def _per_channel(v):
    return v.reshape(1, -1, 1)  # (C,) -> (1, C, 1), broadcasting over N and M


# --- NumPy reference ------------------------------------------------------------------------------

def batchnorm_forward_train_reference(x, gamma, beta, eps):
    xp = get_array_module(x)
    axes = (0, 2)
    mean = x.mean(axis=axes, dtype=xp.float64)  # (C,)
    centred = x - _per_channel(mean).astype(x.dtype)  # (N, C, M)
    var = (centred * centred).mean(axis=axes, dtype=xp.float64)  # (C,), biased
    inv_std = 1.0 / xp.sqrt(var + eps)
    y = centred * _per_channel(inv_std * gamma).astype(x.dtype) + _per_channel(beta).astype(x.dtype)
    return y, mean.astype(x.dtype), var.astype(x.dtype), inv_std.astype(x.dtype)


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


# --- numba: one channel per parallel task ---------------------------------------------------------

def _forward_train_loops(x, gamma, beta, eps, y, mean, var, inv_std):
    n, c, m = x.shape
    count = n * m
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


def _forward_eval_loops(x, gamma, beta, mean, var, eps, y):
    n, c, m = x.shape
    for ch in prange(c):
        scale = gamma[ch] / math.sqrt(var[ch] + eps)
        shift = beta[ch] - mean[ch] * scale
        for b in range(n):
            for k in range(m):
                y[b, ch, k] = x[b, ch, k] * scale + shift


def _backward_loops(g, x, gamma, mean, inv_std, dx, dgamma, dbeta):
    n, c, m = x.shape
    count = n * m
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


_forward_train_jit = parallel_jit(_forward_train_loops, reassociate=True)
_forward_eval_jit = parallel_jit(_forward_eval_loops)
_backward_jit = parallel_jit(_backward_loops, reassociate=True)


def batchnorm_forward_train_numba(x, gamma, beta, eps):
    x = np.ascontiguousarray(x)
    c = x.shape[1]
    y = np.empty_like(x)
    mean, var, inv_std = (np.empty(c, dtype=x.dtype) for _ in range(3))
    _forward_train_jit(x, gamma, beta, eps, y, mean, var, inv_std)
    return y, mean, var, inv_std


def batchnorm_forward_eval_numba(x, gamma, beta, mean, var, eps):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _forward_eval_jit(x, gamma, beta, mean, var, eps, y)
    return y


def batchnorm_backward_numba(g, x, gamma, mean, inv_std):
    g, x = np.ascontiguousarray(g), np.ascontiguousarray(x)
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
    _backward_jit(g, x, gamma, mean, inv_std, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


register("batchnorm_forward_train", reference=batchnorm_forward_train_reference,
         numba=numba_version(_forward_train_jit, batchnorm_forward_train_numba))
register("batchnorm_forward_eval", reference=batchnorm_forward_eval_reference,
         numba=numba_version(_forward_eval_jit, batchnorm_forward_eval_numba))
register("batchnorm_backward", reference=batchnorm_backward_reference,
         numba=numba_version(_backward_jit, batchnorm_backward_numba))
