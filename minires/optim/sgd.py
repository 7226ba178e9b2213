"""Stochastic gradient descent with PyTorch's update rule.

    g = grad + weight_decay * p
    momentum:  b = g (first step), else b = momentum * b + (1 - dampening) * g
               g = g + momentum * b (nesterov)  or  g = b
    p = p - lr * g
"""
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
                g = p.grad.data
                if group["weight_decay"]:
                    g = g + group["weight_decay"] * p.data
                momentum = group["momentum"]
                if momentum:
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = g.copy()
                    else:
                        buffer *= momentum
                        buffer += (1 - group["dampening"]) * g
                    state["momentum_buffer"] = buffer
                    g = g + momentum * buffer if group["nesterov"] else buffer
                p.data -= group["lr"] * g
