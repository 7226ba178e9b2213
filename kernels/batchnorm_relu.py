"""Batch-norm, then an optional residual add, then ReLU, on (N, C, M) arrays: the NCHW twin of
batchnorm_relu_channels_last.py (same maths, signatures and gradient conventions; read its docstring), for
the GPU, where each pass over the activations is a launch: two forward and two backward instead of six
(kernels/cuda/batchnorm.cu's kernels with a residual and a ReLU mask). The NumPy reference is the unfused
composition of batchnorm.py's references. No numba version: on the CPU, NCHW memory runs the three ops
(channels-last memory has its own fused kernels).

    batchnorm_relu_forward_train(x, gamma, beta, eps, residual, running=None) -> y, mean, var, inv_std
    batchnorm_relu_forward_eval(x, gamma, beta, mean, var, eps, residual) -> y
    batchnorm_relu_backward(g, y, x, gamma, mean, inv_std, with_gm) -> dx, dgamma, dbeta, gm
    batchnorm_relu_backward_eval(g, y, x, gamma, mean, inv_std, with_gm) -> dx, dgamma, dbeta, gm
"""
from . import batchnorm as plain
from .batchnorm_relu_channels_last import composed_references

(batchnorm_relu_forward_train_reference, batchnorm_relu_forward_eval_reference, batchnorm_relu_backward_reference,
 batchnorm_relu_backward_eval_reference) = composed_references(plain.batchnorm_forward_train_reference,
                                                               plain.batchnorm_forward_eval_reference,
                                                               plain.batchnorm_backward_reference,
                                                               plain.batchnorm_backward_eval_reference)
