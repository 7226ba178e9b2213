"""Stochastic gradient descent with PyTorch's update rule.

    g = grad + weight_decay * p
    momentum:  b = g (first step), else b = momentum * b + (1 - dampening) * g
               g = g + momentum * b (nesterov)  or  g = b
    p = p - lr * g

The update runs as one kernel per parameter (kernels/sgd.py): one pass over memory on all cores instead of
a NumPy temporary per term.
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
            for group, p, state in self.parameters_with_grads():
                first = bool(group["momentum"]) and "momentum_buffer" not in state
                if first:
                    # laid out as the parameter (order "K"), as its .grad is
                    state["momentum_buffer"] = backend.get_array_module(p.data).empty_like(p.data)
                _update(p.data, p.grad.data, state.get("momentum_buffer"), group, first)


def _update(p, g, buffer, group, first):
    """One parameter, in place, through the sgd_update kernel (kernels/sgd.py). The scalars come in the
    parameter's dtype, so every flavour rounds alike. The kernel walks flat views of the three arrays, which
    must share one dense memory order (a parameter, its .grad and its buffer do: all are laid out as the
    parameter); otherwise the NumPy reference runs on the arrays as they are."""
    xp = backend.get_array_module(p)
    scalar = p.dtype.type
    args = (scalar(group["lr"]), scalar(group["momentum"]), scalar(1 - group["dampening"]),
            scalar(group["weight_decay"]), group["nesterov"], first)
    arrays = [a for a in (p, g, buffer) if a is not None]
    flat = [a.ravel(order="K") for a in arrays]  # a view of dense memory, else a fresh copy (never shared)
    if len({a.strides for a in arrays}) == 1 and all(xp.may_share_memory(f, a) or not a.size
                                                      for f, a in zip(flat, arrays)):
        kernel = kernels.pick("sgd_update", xp)
        kernel(flat[0], flat[1], flat[2] if buffer is not None else flat[0][:0], *args)
    else:
        kernels.implementation("sgd_update", "reference")(p, g, buffer, *args)
