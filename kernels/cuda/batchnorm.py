"""Launch code for batchnorm.cu, with the signatures of kernels/batchnorm.py's references (its cuda slots).
The per-channel vectors (C values) are prepared with the array module's own operations, in the same order
as the references; every pass over the (N, C, M) data is a kernel."""
from minires.backend import get_array_module

from .modules import launch, launch_per_channel


def _normalise(x, mean, scale, shift):
    xp = get_array_module(x)
    y = xp.empty_like(x)
    launch("batchnorm", "normalise", x.dtype, y.size, (x, mean, scale, shift, y, *x.shape))
    return y


def _gradient_sums(g, x, mean, inv_std):
    """(dgamma, dbeta) in float64: sum(g x_hat) and sum(g) per channel."""
    xp = get_array_module(g)
    dgamma, dbeta = xp.empty(g.shape[1], dtype=xp.float64), xp.empty(g.shape[1], dtype=xp.float64)
    launch_per_channel("batchnorm", "gradient_sums", g.dtype, g.shape[1], (g, x, mean, inv_std, dgamma, dbeta,
                                                                          *g.shape))
    return dgamma, dbeta


def batchnorm_forward_train(x, gamma, beta, eps):
    xp = get_array_module(x)
    x, dtype = xp.ascontiguousarray(x), x.dtype
    mean, var, inv_std = (xp.empty(x.shape[1], dtype=xp.float64) for _ in range(3))  # the kernel's doubles
    launch_per_channel("batchnorm", "channel_moments", dtype, x.shape[1], (x, mean, var, inv_std, *x.shape,
                                                                           float(eps)))
    y = _normalise(x, mean.astype(dtype), (inv_std * gamma).astype(dtype), beta.astype(dtype))
    return y, mean.astype(dtype), var.astype(dtype), inv_std.astype(dtype)


def batchnorm_forward_eval(x, gamma, beta, mean, var, eps):
    xp = get_array_module(x)
    scale = gamma / xp.sqrt(var + eps)  # y = x * scale + shift, per channel
    return _normalise(xp.ascontiguousarray(x), xp.zeros_like(scale), scale, beta - mean * scale)


def batchnorm_backward(g, x, gamma, mean, inv_std):
    xp = get_array_module(g)
    g, x, dtype = xp.ascontiguousarray(g), xp.ascontiguousarray(x), g.dtype
    mean, inv_std = mean.astype(dtype, copy=False), inv_std.astype(dtype, copy=False)
    dgamma, dbeta = _gradient_sums(g, x, mean, inv_std)
    dgamma, dbeta = dgamma.astype(dtype), dbeta.astype(dtype)
    s = gamma * inv_std / (x.shape[0] * x.shape[2])
    dx = xp.empty_like(g)
    launch("batchnorm", "three_term_dx", dtype, dx.size, (g, x, mean, inv_std, s, dbeta, dgamma, dx, *g.shape))
    return dx, dgamma, dbeta


def batchnorm_backward_eval(g, x, gamma, mean, inv_std):
    xp = get_array_module(g)
    g, x = xp.ascontiguousarray(g), xp.ascontiguousarray(x)
    mean, inv_std = mean.astype(g.dtype, copy=False), inv_std.astype(g.dtype, copy=False)
    dgamma, dbeta = _gradient_sums(g, x, mean, inv_std)
    scale = gamma * inv_std
    return _normalise(g, xp.zeros_like(scale), scale, xp.zeros_like(scale)), dgamma.astype(g.dtype), \
        dbeta.astype(g.dtype)
