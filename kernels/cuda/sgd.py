"""Launch code for sgd.cu, with the signatures of kernels/sgd.py's references (its cuda slots): flat arrays
of one memory order, updated in place; the scalars arrive in the parameter's dtype."""
from .modules import launch, launch_over_table, table


def sgd_update(p, g, buffer, lr, momentum, keep, weight_decay, nesterov, first):
    launch("sgd", "sgd_update", p.dtype, p.size,
           (p, g, buffer, lr, momentum, keep, weight_decay, int(nesterov), int(first), p.size))
    return p, buffer


def sgd_update_many(params, grads, buffers, lr, momentum, keep, weight_decay, nesterov, firsts):
    """One launch for all the parameters (one dtype): a table row (p, g, buffer, size, first) each; a
    parameter without a buffer passes its own address there (the kernel never touches it without momentum)."""
    rows = [(p, g, p if b is None else b, p.size, int(first)) for p, g, b, first in zip(params, grads, buffers, firsts)]
    launch_over_table("sgd", "sgd_update_many", params[0].dtype, max(p.size for p in params), len(rows),
                      (table(rows, params[0]), len(rows), lr, momentum, keep, weight_decay, int(nesterov)))
    return params, buffers
