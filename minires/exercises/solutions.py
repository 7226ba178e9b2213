"""Reference solutions: minires' own NumPy reference kernels, in the exercises' interface (forward returns
(out, cache), backward returns the input gradients). tests/test_exercises.py checks each with
``minires.exercises.check``; a teacher can read them after the learner has tried."""
import numpy as np

from ..kernels.batchnorm import batchnorm_backward_reference, batchnorm_forward_train_reference
from ..kernels.im2col import Window, conv2d_backward_reference, conv2d_forward_reference, conv_out_size
from ..kernels.pool import max_pool_backward_reference, max_pool_forward_reference
from ..kernels.residual import residual_add_backward_reference, residual_add_forward_reference


def relu_forward(x):
    y = np.maximum(x, 0)
    return y, y


def relu_backward(dy, y):
    return residual_add_backward_reference(dy, y, relu=True)  # dy where y > 0, else 0


def linear_forward(x, w, b):
    return x @ w.T + b, (x, w)                               # (N, OUT)


def linear_backward(dy, cache):
    x, w = cache
    return dy @ w, dy.T @ x, dy.sum(axis=0)                  # dx (N, IN), dw (OUT, IN), db (OUT,)


def residual_join_forward(branch, shortcut):
    y = residual_add_forward_reference(branch, shortcut, relu=True)
    return y, y


def residual_join_backward(dy, y):
    g = residual_add_backward_reference(dy, y, relu=True)
    return g, g                                              # the join hands the same gradient to both inputs


def residual_block_forward(x, w1, w2):
    h, h_cache = linear_forward(x, w1, 0.0)
    a, a_cache = relu_forward(h)
    branch, branch_cache = linear_forward(a, w2, 0.0)        # F(x)
    y, join_cache = residual_join_forward(branch, x)         # relu(F(x) + x)
    return y, (h_cache, a_cache, branch_cache, join_cache)


def residual_block_backward(dy, cache):
    h_cache, a_cache, branch_cache, join_cache = cache
    d_branch, d_shortcut = residual_join_backward(dy, join_cache)
    da, dw2, _ = linear_backward(d_branch, branch_cache)
    dh = relu_backward(da, a_cache)
    dx_through_branch, dw1, _ = linear_backward(dh, h_cache)
    return dx_through_branch + d_shortcut, dw1, dw2          # x fans out: its gradients add


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    n, c = x.shape[:2]
    y, mean, _, inv_std = batchnorm_forward_train_reference(x.reshape(n, c, -1), gamma, beta, eps)
    return y.reshape(x.shape), (x, gamma, mean, inv_std)


def batchnorm_backward(dy, cache):
    x, gamma, mean, inv_std = cache
    n, c = x.shape[:2]
    dx, dgamma, dbeta = batchnorm_backward_reference(dy.reshape(n, c, -1), x.reshape(n, c, -1), gamma, mean,
                                                     inv_std)
    return dx.reshape(x.shape), dgamma, dbeta


def conv2d_forward(x, w, b, stride=1, padding=0):
    out = tuple(conv_out_size(size, k, stride, padding) for size, k in zip(x.shape[2:], w.shape[2:]))
    window = Window(tuple(w.shape[2:]), (stride, stride), (padding, padding), (1, 1), out)
    return conv2d_forward_reference(x, w, b, window, groups=1)


def conv2d_backward(dy, saved):
    return conv2d_backward_reference(saved, dy, (True, True, True))


def max_pool_forward(x, kernel_size=2, stride=2):
    y, argmax = max_pool_forward_reference(x, kernel_size, kernel_size, stride, stride, 0, 0)
    return y, (argmax, x.shape, kernel_size, stride)


def max_pool_backward(dy, cache):
    argmax, shape, k, s = cache
    return max_pool_backward_reference(dy, argmax, shape[2], shape[3], k, k, s, s, 0, 0)
