"""Batch-norm, then an optional residual add, then ReLU, on (N, C, M) arrays: the NCHW twin of
batchnorm_relu_channels_last.py (same maths, signatures and gradient conventions; read its docstring), for
the GPU, where each pass over the activations is a launch: two forward and two backward instead of six
(kernels/cuda/batchnorm.cu's kernels with a residual and a ReLU mask). The NumPy reference is the unfused
composition of batchnorm.py's references. No numba version: on the CPU, NCHW memory runs the three ops
(channels-last memory has its own fused kernels).

    batchnorm_relu_forward_train(x, gamma, beta, eps, residual) -> y, mean, var, inv_std   (+ running=)
    batchnorm_relu_forward_eval(x, gamma, beta, mean, var, eps, residual) -> y
    batchnorm_relu_backward(g, y, x, gamma, mean, inv_std, with_gm) -> dx, dgamma, dbeta, gm
    batchnorm_relu_backward_eval(g, y, x, gamma, mean, inv_std, with_gm) -> dx, dgamma, dbeta, gm
"""
from .batchnorm import (batchnorm_backward_eval_reference, batchnorm_backward_reference,
                        batchnorm_forward_eval_reference, batchnorm_forward_train_reference, updating_running)
from .batchnorm_relu_channels_last import composed_references
from .cuda import batchnorm as cuda
from .registry import register

(batchnorm_relu_forward_train_reference, batchnorm_relu_forward_eval_reference, batchnorm_relu_backward_reference,
 batchnorm_relu_backward_eval_reference) = composed_references(batchnorm_forward_train_reference,
                                                               batchnorm_forward_eval_reference,
                                                               batchnorm_backward_reference,
                                                               batchnorm_backward_eval_reference)

register("batchnorm_relu_forward_train", reference=updating_running(batchnorm_relu_forward_train_reference),
         cuda=cuda.batchnorm_relu_forward_train)
register("batchnorm_relu_forward_eval", reference=batchnorm_relu_forward_eval_reference,
         cuda=cuda.batchnorm_relu_forward_eval)
register("batchnorm_relu_backward", reference=batchnorm_relu_backward_reference, cuda=cuda.batchnorm_relu_backward)
register("batchnorm_relu_backward_eval", reference=batchnorm_relu_backward_eval_reference,
         cuda=cuda.batchnorm_relu_backward_eval)
