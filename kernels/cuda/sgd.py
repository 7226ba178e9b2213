"""Launch code for sgd.cu, with the signature of kernels/sgd.py's reference (its cuda slot): flat arrays of
one memory order, updated in place; the scalars arrive in the parameter's dtype."""
from .modules import launch


def sgd_update(p, g, buffer, lr, momentum, keep, weight_decay, nesterov, first):
    launch("sgd", "sgd_update", p.dtype, p.size,
           (p, g, buffer, lr, momentum, keep, weight_decay, int(nesterov), int(first), p.size))
    return p, buffer
