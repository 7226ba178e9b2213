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
from .output import pyplot, save_figure, write_rows
from .wording import times


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
    result["cosine"] = float((through_branch * through_shortcut).sum() /
                             (np.linalg.norm(through_branch) * np.linalg.norm(through_shortcut)))
    lines = conclusion(rows, result)
    write_rows(directory, "explain", rows, {"config": vars(config), "split": result, "conclusion": lines,
                                            "gradients": {"full": full.tolist(), "through_branch": through_branch.tolist(),
                                                          "through_shortcut": through_shortcut.tolist()}})
    return {"rows": rows, "split": result, "full": full, "through_branch": through_branch,
            "through_shortcut": through_shortcut, "conclusion": lines, "figures": plot(rows, result, directory)}


def conclusion(rows, split):
    norms, check = split["norms"], split["gradcheck"]
    at_join = next(r["grad_norm"] for r in rows if r["node"].startswith("F(x)"))
    lines = [f"dL/dx = (through F) + (through the shortcut): ||{norms['through_branch']:.4g}|| + "
             f"||{norms['through_shortcut']:.4g}|| gives ||{norms['full']:.4g}||; the two parts are vectors at "
             f"cosine {split['cosine']:.2f}, so their norms add only when they point the same way",
             f"the shortcut hands the join's gradient to x unchanged (||{at_join:.4g}|| at the join, "
             f"||{norms['through_shortcut']:.4g}|| at x); through F it is multiplied by the Jacobians of BN, conv, "
             f"ReLU, BN and conv and arrives {times(norms['through_branch'] / norms['through_shortcut'])} the "
             f"shortcut's size"]
    verdict = "both checks pass" if split["split_max_error"] < 1e-10 and check["passed"] else "a check FAILED"
    lines.append(f"the parts sum to the full gradient to {split['split_max_error']:.1e}, and the full gradient "
                 f"matches central finite differences to {check['max_rel_error']:.1e} (relative): {verdict}")
    return lines


def plot(rows, split, directory):
    """The block as a diagram: forward left to right along the top, the shortcut as the side path below;
    under each node the norm of the gradient backward leaves there; at x the two parts and their sum."""
    plt = pyplot()
    if plt is None:
        return []
    grad = {r["node"]: r["grad_norm"] for r in rows}
    chain = [("x", "x"), ("conv1(x)", "conv1"), ("bn1", "BN1"), ("relu", "ReLU"), ("conv2", "conv2"),
             ("F(x) = bn2", "BN2 = F(x)"), ("join", "+"), ("y = relu(F(x) + W_s x)", "ReLU = y")]
    figure, axis = plt.subplots(figsize=(14, 4.6))
    xs = {node: 0.6 + 1.5 * i for i, (node, _) in enumerate(chain)}
    top, side = 2.0, 0.75
    for node, text in chain:
        round_join = node == "join"
        axis.text(xs[node], top, text, ha="center", va="center", fontsize=12 if round_join else 10,
                  bbox=dict(boxstyle="circle,pad=0.25" if round_join else "round,pad=0.4",
                            fc="#d5ecd4" if node.startswith(("x", "y")) else "#dbe8f6", ec="#555555"))
        if node in grad:
            axis.text(xs[node], top + (0.35 if node == "x" else -0.45),
                      f"||dL/d·|| {grad[node]:.3g}" + (" (total)" if node == "x" else ""),
                      ha="center", fontsize=8, color="#b22222", fontweight="bold" if node == "x" else "normal")
    for (a, _), (b, _) in zip(chain, chain[1:]):
        wide = 0.6 if a.startswith("F(x)") else 0.42
        axis.annotate("", xy=(xs[b] - (0.6 if b.startswith("F(x)") else 0.42), top), xytext=(xs[a] + wide, top),
                      arrowprops=dict(arrowstyle="->", color="#333333", lw=1.2))
    # the shortcut: down from x, along the bottom, up into the join
    x0, xj = xs["x"], xs["join"]
    axis.plot([x0, x0, xj, xj], [top - 0.3, side, side, top - 0.55], color="#2b6cb0", lw=2)
    axis.annotate("", xy=(xj, top - 0.3), xytext=(xj, top - 0.56), arrowprops=dict(arrowstyle="->", color="#2b6cb0", lw=2))
    axis.text((x0 + xj) / 2, side + 0.12, "shortcut W_s x = x (identity): the gradient passes unchanged",
              ha="center", fontsize=9, color="#2b6cb0")
    axis.text((x0 + xj) / 2, side - 0.25, f"gradient sent back along it: ||{split['norms']['through_shortcut']:.4g}||",
              ha="center", fontsize=9, color="#b22222")
    axis.text((x0 + xj) / 2, top + 0.55, f"branch F: the gradient reaches x through five Jacobians: "
              f"||{split['norms']['through_branch']:.4g}||", ha="center", fontsize=9, color="#b22222")
    norms = split["norms"]
    axis.text(x0 - 0.45, side - 0.75,
              f"at x:  dL/dx = a + b,  a = through F (||a|| = {norms['through_branch']:.4g}),  b = through the shortcut "
              f"(||b|| = {norms['through_shortcut']:.4g})  ->  ||a + b|| = {norms['full']:.4g}   (cosine(a, b) = "
              f"{split['cosine']:.2f}; a + b equals the full backward to {split['split_max_error']:.0e})",
              fontsize=9.5, color="#b22222",
              bbox=dict(boxstyle="round,pad=0.4", fc="#fff5f5", ec="#b22222"))
    axis.set(xlim=(0, xs[chain[-1][0]] + 0.8), ylim=(-0.3, 2.9))
    axis.axis("off")
    axis.set_title("One residual block y = ReLU(F(x) + x): forward along the top, the gradient norms (red) "
                   "backward leaves at each node", fontsize=11)
    path = save_figure(figure, directory, "explain")
    plt.close(figure)
    return [path]
