"""The SGD update of one parameter, in place, as PyTorch's rule (minires/optim/sgd.py):

    d = g + weight_decay * p
    momentum:  b = d (first step), else b = momentum * b + keep * d      (keep = 1 - dampening)
               d = d + momentum * b (nesterov)  or  d = b
    p = p - lr * d

The NumPy reference makes a temporary per term, several passes over memory on one core (ResNet-18's 11.7 M
parameters: 25 ms per step); the loops make one pass on all cores. The scalars come in the parameter's
dtype, so both flavours round every product and sum alike and agree to the bit. Arrays are flat views of the
same memory order; both return (p, buffer) after updating them in place. The CUDA version is
kernels/cuda/sgd.cu.

sgd_update_many(params, grads, buffers, lr, momentum, keep, weight_decay, nesterov, firsts) updates a list
of parameters (flat arrays of one dtype) that share the scalars, ``firsts`` saying per parameter whether its
buffer starts now: on the GPU one launch for an optimiser's group instead of one per parameter; its
reference is the loop over sgd_update.
"""
from .cuda import sgd as cuda
from .jit import parallel_jit, prange
from .registry import register


def sgd_update_reference(p, g, buffer, lr, momentum, keep, weight_decay, nesterov, first):
    d = g + weight_decay * p if weight_decay else g
    if momentum:
        if first:
            buffer[...] = d
        else:
            buffer *= momentum
            buffer += keep * d
        d = d + momentum * buffer if nesterov else buffer
    p -= lr * d
    return p, buffer


def sgd_update_loops(p, g, buffer, lr, momentum, keep, weight_decay, nesterov, first):
    for i in prange(p.size):
        d = g[i] + weight_decay * p[i] if weight_decay else g[i]
        if momentum:
            b = d if first else buffer[i] * momentum + keep * d
            buffer[i] = b
            d = d + momentum * b if nesterov else b
        p[i] = p[i] - lr * d
    return p, buffer


def sgd_update_many_reference(params, grads, buffers, lr, momentum, keep, weight_decay, nesterov, firsts):
    for p, g, buffer, first in zip(params, grads, buffers, firsts):
        sgd_update_reference(p, g, buffer, lr, momentum, keep, weight_decay, nesterov, first)
    return params, buffers


sgd_update_numba = parallel_jit(sgd_update_loops)

register("sgd_update", reference=sgd_update_reference, numba=sgd_update_numba, cuda=cuda.sgd_update)
register("sgd_update_many", reference=sgd_update_many_reference, cuda=cuda.sgd_update_many)
