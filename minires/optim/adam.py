"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019) with PyTorch's update rules.

    t = t + 1;   g = grad (+ weight_decay * p for Adam: L2 added to the gradient)
    m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
AdamW decouples the decay: p = p * (1 - lr * weight_decay) before the Adam step.
"""
import math

from .. import backend
from ..errors import ArgumentError
from ..grad_mode import no_grad
from ..functional.operands import not_implemented
from .optimizer import Optimizer


class Adam(Optimizer):
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        not_implemented(type(self).__name__, amsgrad=(amsgrad, False), maximize=(maximize, False),
                        differentiable=(differentiable, False))
        if decoupled_weight_decay:  # torch's Adam(decoupled_weight_decay=True) is AdamW
            self.decoupled = True
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def check_hyperparameters(self):
        for group in self.param_groups:
            if not all(0.0 <= b < 1.0 for b in group["betas"]):
                raise ArgumentError(f"{type(self).__name__}: betas must lie in [0, 1), got {group['betas']}")

    def step(self, closure=None):
        loss = self.evaluate(closure)
        with no_grad():
            for group, p, state in self.parameters_with_grads():
                xp = backend.get_array_module(p.array)
                beta1, beta2 = group["betas"]
                g = p.grad.array
                if group["weight_decay"]:
                    if self.decoupled:
                        p.array *= 1 - group["lr"] * group["weight_decay"]
                    else:
                        g = g + group["weight_decay"] * p.array
                if "step" not in state:
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(p.array)
                    state["exp_avg_sq"] = xp.zeros_like(p.array)
                state["step"] += 1
                m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                m += (1 - beta1) * (g - m)  # m = beta1 m + (1 - beta1) g, written as PyTorch's lerp
                v *= beta2
                v += (1 - beta2) * g * g
                step_size = group["lr"] / (1 - beta1 ** t)
                denominator = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + group["eps"]
                p.array -= step_size * (m / denominator)
        return loss


class AdamW(Adam):
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, differentiable=differentiable)
