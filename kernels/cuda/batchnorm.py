"""Launch code for batchnorm.cu, with the signatures of kernels/batchnorm.py's references (its cuda slots).
A training forward is two launches (statistics with the running-statistics update, then normalise), a
training backward two (the gradient sums, then dx); the per-channel vectors are computed inside them.

An (N, C, M) input is passed as the memory under it, with its two strides: its own memory when that is
(N, C, M) or (C, N, M) in C order (the GPU convolution's output is the second), else a C-contiguous copy.
"""
from minires.backend import get_array_module

from .modules import launch, launch_per_channel


def _memory(a):
    """(C-contiguous array the kernel indexes, stride of an image, stride of a channel) of (N, C, M) ``a``."""
    n, c, m = a.shape
    if a.flags.c_contiguous:
        return a, c * m, m
    channels_first = a.transpose(1, 0, 2)
    if channels_first.flags.c_contiguous:
        return channels_first, m, n * m
    return get_array_module(a).ascontiguousarray(a), c * m, m


def _laid_out_as(x):
    """An empty (N, C, M) array whose memory is ordered as the memory _memory(x) hands the kernels."""
    xp = get_array_module(x)
    if not x.flags.c_contiguous and x.transpose(1, 0, 2).flags.c_contiguous:
        return xp.empty((x.shape[1], x.shape[0], x.shape[2]), dtype=x.dtype).transpose(1, 0, 2)
    return xp.empty(x.shape, dtype=x.dtype)


def _normalise(x, mean, scale, shift):
    xp = get_array_module(x)
    memory, sn, sc = _memory(x)
    y = xp.empty(x.shape, dtype=x.dtype)
    launch("batchnorm", "normalise", x.dtype, y.size, (memory, sn, sc, mean, scale, shift, y, *x.shape))
    return y


def _gradient_sums(g, x, mean, inv_std):
    """(dgamma, dbeta): sum(g x_hat) and sum(g) per channel, summed in double, in g's dtype."""
    xp = get_array_module(g)
    dgamma, dbeta = xp.empty(g.shape[1], dtype=g.dtype), xp.empty(g.shape[1], dtype=g.dtype)
    launch_per_channel("batchnorm", "gradient_sums", g.dtype, g.shape[1],
                       (*_memory(g), *_memory(x), mean, inv_std, dgamma, dbeta, *g.shape))
    return dgamma, dbeta


def batchnorm_forward_train(x, gamma, beta, eps, running=None):
    """y, mean, var, inv_std; with running = (running_mean, running_var, momentum), those two arrays move in
    place in the same launch."""
    xp = get_array_module(x)
    memory, sn, sc = _memory(x)
    mean, var, inv_std, scale = (xp.empty(x.shape[1], dtype=x.dtype) for _ in range(4))
    running_mean, running_var, momentum = running if running is not None else (None, None, 0.0)
    update = running_mean is not None and running_var is not None
    launch_per_channel("batchnorm", "channel_moments", x.dtype, x.shape[1],
                       (memory, sn, sc, gamma, mean, var, inv_std, scale, running_mean if update else mean,
                        running_var if update else var, float(momentum), int(update), *x.shape, float(eps)))
    if not update and running is not None:  # one statistic tracked without the other (rare): as the reference
        from ..batchnorm import update_running
        update_running(running_mean, running_var, mean, var, x.size // x.shape[1], momentum)
    y = xp.empty(x.shape, dtype=x.dtype)
    launch("batchnorm", "normalise", x.dtype, y.size, (memory, sn, sc, mean, scale, beta, y, *x.shape))
    return y, mean, var, inv_std


def batchnorm_forward_eval(x, gamma, beta, mean, var, eps):
    xp = get_array_module(x)
    scale = gamma / xp.sqrt(var + eps)  # y = x * scale + shift, per channel
    return _normalise(x, xp.zeros_like(scale), scale, beta - mean * scale)


def batchnorm_backward(g, x, gamma, mean, inv_std):
    dgamma, dbeta = _gradient_sums(g, x, mean, inv_std)
    memory, xsn, xsc = _memory(x)
    dx = _laid_out_as(x)
    launch("batchnorm", "three_term_dx", g.dtype, dx.size,
           (*_memory(g), memory, xsn, xsc, gamma, mean, inv_std, dbeta, dgamma, _memory(dx)[0], *g.shape))
    return dx, dgamma, dbeta


def batchnorm_backward_eval(g, x, gamma, mean, inv_std):
    xp = get_array_module(g)
    dgamma, dbeta = _gradient_sums(g, x, mean, inv_std)
    scale = gamma * inv_std
    return _normalise(g, xp.zeros_like(scale), scale, xp.zeros_like(scale)), dgamma, dbeta
