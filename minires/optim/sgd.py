"""Stochastic gradient descent with PyTorch's documented update rule. For each parameter p with gradient g:

    g = g + weight_decay * p
    momentum:  b = g (first step), else b = momentum * b + (1 - dampening) * g
               g = g + momentum * b (nesterov)  or  g = b
    p = p - lr * g

The rule is written once, in kernels/sgd.py's ``sgd_rule``; kernels.sgd_update applies it to a group's
parameters in place (one pass over memory per parameter on all cores; one launch per group on the GPU).
"""
from .. import backend, kernels
from ..errors import ArgumentError
from ..grad_mode import no_grad
from ..functional.operands import not_implemented
from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        not_implemented("SGD", maximize=(maximize, False), differentiable=(differentiable, False))
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    def check_hyperparameters(self):
        for group in self.param_groups:
            if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
                raise ArgumentError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")

    def step(self, closure=None):
        loss = self.evaluate(closure)
        with no_grad():
            for group in self.param_groups:
                params, grads, buffers, firsts = [], [], [], []
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state.setdefault(id(p), {})
                    first = bool(group["momentum"]) and "momentum_buffer" not in state
                    if first:  # b starts as g in the first step; laid out as the parameter, as its .grad is
                        state["momentum_buffer"] = backend.get_array_module(p.array).empty_like(p.array)
                    params.append(p.array)
                    grads.append(p.grad.array)
                    buffers.append(state.get("momentum_buffer"))
                    firsts.append(first)
                kernels.sgd_update(params, grads, buffers, firsts, group["lr"], group["momentum"],
                                   group["dampening"], group["weight_decay"], group["nesterov"])
        return loss
