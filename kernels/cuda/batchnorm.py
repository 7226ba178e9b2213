"""Launch code for batchnorm.cu, with the signatures of kernels/batchnorm.py's references (its cuda slots).
A training forward is two launches (statistics with the running-statistics update, then normalise), a
training backward two (the gradient sums, then dx); the per-channel vectors are computed inside them. The
fused batch-norm + residual + ReLU of kernels/batchnorm_relu.py is the same launches with flags.

An (N, C, M) input is passed as the memory under it, with its two strides: its own memory when that is
(N, C, M) or (C, N, M) in C order (the GPU convolution's output is the second), else a C-contiguous copy.
"""
from minires.backend import get_array_module

from ..batchnorm import update_running
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


def _normalise(x, mean, scale, shift, residual=None, relu=False):
    """y = (x - mean) scale + shift per channel, NCHW; + residual and max(., 0) with ``relu``."""
    xp = get_array_module(x)
    memory, sn, sc = _memory(x)
    y = xp.empty(x.shape, dtype=x.dtype)
    r = y if residual is None else xp.ascontiguousarray(residual)  # (y stands in for a missing residual)
    launch("batchnorm", "normalise", x.dtype, y.size, (memory, sn, sc, mean, scale, shift, r, int(residual is not None),
                                                      int(relu), y, *x.shape))
    return y


def _gradient_sums(g, y, x, mean, inv_std):
    """(dgamma, dbeta): sum(g x_hat) and sum(g) per channel of the gradient that reaches the batch-norm (g
    masked by y > 0 when y is given), summed in double, in g's dtype."""
    xp = get_array_module(g)
    g_memory = _memory(g)
    dgamma, dbeta = xp.empty(g.shape[1], dtype=g.dtype), xp.empty(g.shape[1], dtype=g.dtype)
    launch_per_channel("batchnorm", "gradient_sums", g.dtype, g.shape[1],
                       (*g_memory, *_mask(y, g_memory[0]), *_memory(x), mean, inv_std, dgamma, dbeta, *g.shape))
    return dgamma, dbeta


def _mask(y, stand_in):
    """(NCHW y, 1) for a backward behind a fused ReLU, else (a stand-in the kernel never reads, 0)."""
    return (stand_in, 0) if y is None else (get_array_module(y).ascontiguousarray(y), 1)


def _forward_train(x, gamma, beta, eps, running, residual=None, relu=False):
    xp = get_array_module(x)
    memory, sn, sc = _memory(x)
    mean, var, inv_std, scale = (xp.empty(x.shape[1], dtype=x.dtype) for _ in range(4))
    running_mean, running_var, momentum = running if running is not None else (None, None, 0.0)
    update = running_mean is not None and running_var is not None
    launch_per_channel("batchnorm", "channel_moments", x.dtype, x.shape[1],
                       (memory, sn, sc, gamma, mean, var, inv_std, scale, running_mean if update else mean,
                        running_var if update else var, float(momentum), int(update), *x.shape, float(eps)))
    if not update and running is not None:  # one statistic tracked without the other (rare): as the reference
        update_running(running, mean, var, x.size // x.shape[1])
    return _normalise(x, mean, scale, beta, residual, relu), mean, var, inv_std


def _backward_train(g, y, x, gamma, mean, inv_std, with_gm):
    """dx, dgamma, dbeta and (with_gm) the gradient that reached the batch-norm; y masks g when given."""
    xp = get_array_module(g)
    dgamma, dbeta = _gradient_sums(g, y, x, mean, inv_std)
    g_memory, (memory, xsn, xsc) = _memory(g), _memory(x)
    dx = _laid_out_as(x)
    dx_memory = _memory(dx)[0]
    gm = xp.empty(g.shape, dtype=g.dtype) if with_gm else None
    launch("batchnorm", "three_term_dx", g.dtype, dx.size,
           (*g_memory, *_mask(y, g_memory[0]), memory, xsn, xsc, gamma, mean, inv_std, dbeta, dgamma, dx_memory,
            dx_memory if gm is None else gm, int(with_gm), *g.shape))
    return dx, dgamma, dbeta, gm


# --- the cuda slots of kernels/batchnorm.py ---------------------------------------------------------------

def batchnorm_forward_train(x, gamma, beta, eps, running=None):
    """y, mean, var, inv_std; with running = (running_mean, running_var, momentum), those two arrays move in
    place in the statistics launch."""
    return _forward_train(x, gamma, beta, eps, running)


def batchnorm_forward_eval(x, gamma, beta, mean, var, eps):
    xp = get_array_module(x)
    scale = gamma / xp.sqrt(var + eps)  # y = x * scale + shift, per channel
    return _normalise(x, xp.zeros_like(scale), scale, beta - mean * scale)


def batchnorm_backward(g, x, gamma, mean, inv_std):
    return _backward_train(g, None, x, gamma, mean, inv_std, False)[:3]


def batchnorm_backward_eval(g, x, gamma, mean, inv_std):
    xp = get_array_module(g)
    dgamma, dbeta = _gradient_sums(g, None, x, mean, inv_std)
    scale = gamma * inv_std
    return _normalise(g, xp.zeros_like(scale), scale, xp.zeros_like(scale)), dgamma, dbeta


# --- the cuda slots of kernels/batchnorm_relu.py: the same launches with the residual and the mask ----------

def batchnorm_relu_forward_train(x, gamma, beta, eps, residual, running=None):
    return _forward_train(x, gamma, beta, eps, running, residual, relu=True)


def batchnorm_relu_forward_eval(x, gamma, beta, mean, var, eps, residual):
    xp = get_array_module(x)
    scale = gamma / xp.sqrt(var + eps)
    return _normalise(x, xp.zeros_like(scale), scale, beta - mean * scale, residual, relu=True)


def batchnorm_relu_backward(g, y, x, gamma, mean, inv_std, with_gm):
    return _backward_train(g, y, x, gamma, mean, inv_std, with_gm)


def batchnorm_relu_backward_eval(g, y, x, gamma, mean, inv_std, with_gm):
    xp = get_array_module(g)
    gm = xp.where(y <= 0, 0, g).astype(g.dtype, copy=False)  # evaluation is not the step to fuse
    return (*batchnorm_backward_eval(gm, x, gamma, mean, inv_std), gm if with_gm else None)
