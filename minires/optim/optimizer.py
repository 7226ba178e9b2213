"""The Optimizer base: parameter groups, zero_grad, and state_dict in PyTorch's layout.

state_dict() = {"state": {index: {name: array or number}}, "param_groups": [{..., "params": [index, ...]}]}
with parameters numbered in group order, as PyTorch does, so a saved state maps back onto the same model.
"""
import copy

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError
from ..grad_mode import enable_grad
from ..tensor import Tensor


class Optimizer:
    defaults = {}

    def __init__(self, params, defaults):
        params = list(params)
        if not params:
            raise ArgumentError(f"{type(self).__name__}: got an empty parameter list")
        if isinstance(params[0], tuple) and len(params[0]) == 2 and isinstance(params[0][0], str):
            params = [p for _, p in params]  # named_parameters(), as torch accepts
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for group in groups:
            group = {**defaults, **group, "params": list(group["params"])}
            for name, value in group.items():
                if name != "params" and isinstance(value, (int, float)) and value < 0:
                    raise ArgumentError(f"{type(self).__name__}: {name} must be non-negative, got {value}")
            for p in group["params"]:
                if not isinstance(p, Tensor) or not p.requires_grad:
                    raise ArgumentTypeError(f"{type(self).__name__}: can only optimise Tensors that require grad")
            self.param_groups.append(group)
        self.state = {}  # id(param) -> dict of per-parameter state
        self.check_hyperparameters()

    def __repr__(self):
        """As torch prints an optimiser: each parameter group's hyper-parameters, sorted by name."""
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {name}: {value}" for name, value in sorted(group.items()) if name != "params"]
        return "\n".join(lines + [")"])

    def check_hyperparameters(self):
        """Subclasses validate their hyper-parameters here (called once the groups are built)."""

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.array[...] = 0

    @staticmethod
    def evaluate(closure):
        """torch's step(closure): re-evaluate the loss (with gradients recorded) before the update."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def parameters_with_grads(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, self.state.setdefault(id(p), {})

    # --- saving and restoring ---------------------------------------------------------------------
    def state_dict(self):
        index, groups, state = 0, [], {}
        for group in self.param_groups:
            numbers = list(range(index, index + len(group["params"])))
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": numbers})
            for i, p in zip(numbers, group["params"]):
                if id(p) in self.state:
                    state[i] = {k: (backend.to_numpy(v).copy() if hasattr(v, "shape") else v)
                                for k, v in self.state[id(p)].items()}
            index += len(group["params"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(saved["params"]) != len(group["params"]) for saved, group in zip(groups, self.param_groups)):
            raise ArgumentError(f"{type(self).__name__}.load_state_dict: the saved parameter groups "
                             f"({[len(g['params']) for g in groups]}) do not match this optimiser's "
                             f"({[len(g['params']) for g in self.param_groups]})")
        params = [p for group in self.param_groups for p in group["params"]]
        self.state = {}
        for i, values in state_dict["state"].items():
            p = params[int(i)]
            values = {k: (v.numpy() if isinstance(v, Tensor) else v) for k, v in values.items()}  # torch files
            values = {k: (v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v) for k, v in values.items()}
            self.state[id(p)] = {k: (backend.to_device(np.asarray(v), p.device).astype(p.dtype)
                                     if isinstance(v, np.ndarray) and v.ndim else v)
                                 for k, v in copy.deepcopy(values).items()}
            if isinstance(self.state[id(p)].get("step"), float):
                self.state[id(p)]["step"] = int(self.state[id(p)]["step"])
        for saved, group in zip(groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
