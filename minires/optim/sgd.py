"""Stochastic gradient descent with PyTorch's update rule.

    g = grad + weight_decay * p
    momentum:  b = g (first step), else b = momentum * b + (1 - dampening) * g
               g = g + momentum * b (nesterov)  or  g = b
    p = p - lr * g

The update runs as one kernel per parameter (kernels/sgd.py): one pass over memory on all cores instead of
a NumPy temporary per term; on the GPU as one kernel for all the parameters of a group (sgd_update_many).
"""
from .. import backend, kernels
from ..errors import ArgumentError
from ..grad_mode import no_grad
from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov)

    def check_hyperparameters(self):
        for group in self.param_groups:
            if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
                raise ArgumentError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")

    def step(self):
        with no_grad():
            together = {}  # (group, dtype) -> [(flat p, flat g, flat buffer, first)]: one launch each on the GPU
            for group, p, state in self.parameters_with_grads():
                first = bool(group["momentum"]) and "momentum_buffer" not in state
                if first:
                    # laid out as the parameter (order "K"), as its .grad is
                    state["momentum_buffer"] = backend.get_array_module(p.data).empty_like(p.data)
                buffer = state.get("momentum_buffer")
                flat = _flat_views(p.data, p.grad.data, buffer)
                if flat is None:  # not one dense memory order: the reference, on the arrays as they are
                    kernels.implementation("sgd_update", "reference")(p.data, p.grad.data, buffer,
                                                                      *_scalars(group, p.dtype), first)
                elif kernels.cuda_in_force(backend.get_array_module(p.data)):
                    together.setdefault((id(group), p.dtype), (group, []))[1].append((*flat, first))
                else:  # (an empty stand-in for a missing buffer: numba types every argument)
                    p_flat, g_flat, b_flat = flat
                    kernels.pick("sgd_update", backend.get_array_module(p.data))(
                        p_flat, g_flat, p_flat[:0] if b_flat is None else b_flat, *_scalars(group, p.dtype), first)
            for (_, dtype), (group, rows) in together.items():
                params, grads, buffers, firsts = zip(*rows)
                kernels.pick("sgd_update_many", backend.get_array_module(params[0]))(
                    list(params), list(grads), list(buffers), *_scalars(group, dtype)[:-1], nesterov=group["nesterov"],
                    firsts=list(firsts))


def _scalars(group, dtype):
    """lr, momentum, keep = 1 - dampening, weight decay in the parameter's dtype (so every flavour rounds
    alike), and nesterov."""
    scalar = dtype.type
    return (scalar(group["lr"]), scalar(group["momentum"]), scalar(1 - group["dampening"]),
            scalar(group["weight_decay"]), group["nesterov"])


def _flat_views(p, g, buffer):
    """Flat views of a parameter, its gradient and its buffer (or None without momentum) when the three share
    one dense memory order, as they do when laid out as the parameter; otherwise None. The kernels walk these."""
    xp = backend.get_array_module(p)
    arrays = [a for a in (p, g, buffer) if a is not None]
    flat = [a.ravel(order="K") for a in arrays]  # a view of dense memory, else a fresh copy (never shared)
    if len({a.strides for a in arrays}) != 1 or not all(xp.may_share_memory(f, a) or not a.size
                                                       for f, a in zip(flat, arrays)):
        return None
    return flat[0], flat[1], flat[2] if buffer is not None else None
