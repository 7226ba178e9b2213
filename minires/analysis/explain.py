"""Backprop through one residual block, node by node.

A BasicBlock y = relu(F(x) + x) with F(x) = BN(conv(relu(BN(conv(x))))) runs forward and backward on a tiny
float64 input, with L = sum(v * y) for a random v. Every node's value statistics and gradient are recorded.
At the join the gradient splits:

    dL/dx = dL/dx through the branch F  +  dL/dx through the shortcut  =  dL/dy' (dF/dx + I)

(y' = F(x) + x, before the ReLU). Both parts are computed separately — backward once with the shortcut cut
(its output detached), once with the branch cut — and their sum is checked against the full gradient and
against central finite differences.
"""
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..verify.gradcheck import gradcheck
from ..nn import BasicBlock
from ..tensor import Tensor
from .output import write_rows


@dataclass
class ExplainConfig:
    channels: int = 2
    size: int = 3
    batch: int = 2
    seed: int = 0
    device: str = "cpu"


NODES = [("x", None), ("conv1(x)", "conv1"), ("bn1", "bn1"), ("relu", "conv2:input"), ("conv2", "conv2"),
         ("F(x) = bn2", "bn2"), ("shortcut W_s x", "downsample")]


def _statistics(array):
    array = np.asarray(array, np.float64)
    return {"shape": list(array.shape), "mean": float(array.mean()), "std": float(array.std()),
            "min": float(array.min()), "max": float(array.max())}


def _forward(block, x, cut=None):
    """Run the block, keeping every node (with retain_grad); ``cut`` ('branch' or 'shortcut') detaches it."""
    nodes, handles = {"x": x}, []
    for label, where in NODES[1:]:
        module_name, _, part = where.partition(":")
        module = getattr(block, module_name)

        def keep(m, inputs, output, label=label, part=part):
            value = inputs[0] if part == "input" else output
            value.retain_grad()
            nodes[label] = value
            cut_here = (cut == "branch" and label.startswith("F(x)")) or (cut == "shortcut" and label.startswith("shortcut"))
            return output.detach() if cut_here else None
        handles.append(module.register_forward_hook(keep))
    y = block(x)
    for handle in handles:
        handle.remove()
    nodes["y = relu(F(x) + W_s x)"] = y
    y.retain_grad()
    return y, nodes


def run(config, directory, progress=print):
    rng = np.random.default_rng(config.seed)
    block = BasicBlock(config.channels, config.channels, stride=1, shortcut="A", rng=rng).double().to(config.device)
    shape = (config.batch, config.channels, config.size, config.size)
    x0 = rng.standard_normal(shape)
    v = rng.standard_normal(shape)

    def gradient(cut=None):
        x = Tensor(x0, requires_grad=True, device=config.device)
        y, nodes = _forward(block, x, cut)
        (y * Tensor(v, device=config.device)).sum().backward()
        return x.grad.numpy(), nodes

    full, nodes = gradient()
    through_branch, _ = gradient(cut="shortcut")
    through_shortcut, _ = gradient(cut="branch")
    rows = []
    for name, tensor in nodes.items():
        grad = tensor.grad
        grad = None if grad is None else grad.numpy()
        if name.startswith("shortcut") and tensor is nodes["x"]:
            grad = through_shortcut  # an identity shortcut *is* x: show what arrives along the shortcut alone
        rows.append({"node": name, **_statistics(tensor.numpy()),
                     "grad_norm": float(np.sqrt((grad ** 2).sum())) if grad is not None else None})
    split_error = float(np.abs(through_branch + through_shortcut - full).max())
    check = gradcheck(lambda t: (block(t) * Tensor(v, device=config.device)).sum(),
                      [backend.to_device(x0, config.device)], raise_exception=False, name="BasicBlock")
    result = {"split_max_error": split_error, "gradcheck": {"passed": check.passed, "max_abs_error": check.max_abs_error,
                                                           "max_rel_error": check.max_rel_error},
              "norms": {"full": float(np.linalg.norm(full)), "through_branch": float(np.linalg.norm(through_branch)),
                        "through_shortcut": float(np.linalg.norm(through_shortcut))}}
    write_rows(directory, "explain", rows, {"config": vars(config), "split": result,
                                            "gradients": {"full": full.tolist(), "through_branch": through_branch.tolist(),
                                                          "through_shortcut": through_shortcut.tolist()}})
    return {"rows": rows, "split": result, "full": full, "through_branch": through_branch,
            "through_shortcut": through_shortcut}
