"""The gradient at every join of a residual network, across depth, at initialisation and after training, with
and without batch-norm (``minires explain`` shows one block; this is all of them).

Block k computes y = relu(F(x) + S(x)) with S the shortcut (the identity, or option A's subsample and zero
padding where the shape changes). Its input x reaches the loss along two routes, so

    dL/dx = dL/dx through F  +  dL/dx through S        (the two parts, "branch" and "shortcut")

and only through block k: x is used nowhere else. Each block is run with x fed to F and to S as two separate
copies, whose gradients are the two parts; their sum is dL/dx exactly. Per block: the two norms, their ratio
||branch|| / ||shortcut||, their cosine, and ||dL/dx||, on the mean cross-entropy of a fixed subset of
training images (batch-norm in training mode, as gradient descent sees it; its running statistics are put back).

Without batch-norm every BatchNorm2d is removed (the CIFAR layout otherwise unchanged); those nets train at
--lr-without-bn, because at the BN nets' lr they diverge. Residual branches start from the standard
initialisation here (--zero-init-residual false), so the branch part is not zero at initialisation by
construction.
"""
import contextlib
import copy
from dataclasses import dataclass

import numpy as np

from .. import backend
from .. import functional as F
from ..errors import ArgumentError
from ..nn import BatchNorm2d, Identity, Module
from ..tensor import Tensor
from .lesion import blocks_of
from .output import pyplot, save_figure, write_rows
from .twins import ShortTraining, Twins, title
from .wording import times


@dataclass
class JoinsConfig(ShortTraining):
    zero_init_residual: bool = False  # the branch part at initialisation would be 0 by construction
    lr_without_bn: float = 0.01  # at the BN nets' lr the nets without batch-norm diverge

    def __post_init__(self):
        super().__post_init__()
        if not self.lr_without_bn > 0:
            raise ArgumentError(f"joins: --lr-without-bn must be positive, got {self.lr_without_bn}")


class SplitJoin(Module):
    """A BasicBlock whose branch F and shortcut S each get their own copy of x, so that backward keeps the
    two parts of dL/dx apart: y = relu(F(x_F) + S(x_S)), x_F = x_S = x, dL/dx = dL/dx_F + dL/dx_S."""

    def __init__(self, block, record):
        super().__init__()
        self.block, self.record = block, record

    def forward(self, x):
        b = self.block
        x.retain_grad()
        x_branch, x_shortcut = x.clone(), x.clone()
        x_branch.retain_grad()
        x_shortcut.retain_grad()
        self.record.append((x, x_branch, x_shortcut))
        branch = b.bn2(b.conv2(b.relu(b.bn1(b.conv1(x_branch)))))   # F(x)
        return b.join(branch, b.downsample(x_shortcut))             # relu(F(x) + S(x))


@contextlib.contextmanager
def split_joins(model, record):
    """Replace every residual block by its SplitJoin while the context lasts."""
    found = [(stage, index, block) for stage, index, block in blocks_of(model) if block.downsample is not None]
    for stage, index, block in found:
        stage[index] = SplitJoin(block, record)
    try:
        yield
    finally:
        for stage, index, block in found:
            stage[index] = block


def join_gradients(model, images, labels, device="cpu"):
    """Per residual block, input to output: (dL/dx, the part through the branch, the part through the
    shortcut) as arrays, for the training-mode loss; the model's running statistics are left as they were."""
    record, buffers = [], copy.deepcopy({k: v.numpy() for k, v in model.named_buffers()})
    model.train()
    with split_joins(model, record):
        loss = F.cross_entropy(model(Tensor(images, device=device)), backend.to_device(labels, device))
        loss.backward()
    model.load_state_dict(buffers, strict=False)
    model.zero_grad()
    return [tuple(backend.to_numpy(t.grad.array).astype(np.float64) for t in entry) for entry in record]


def ratio(a, b):
    """a / b, with inf for a / 0 and NaN for 0 / 0 (a dead block passes no gradient at all)."""
    if b:
        return a / b
    return float("inf") if a else float("nan")


def describe(parts):
    """Norms, ratio and cosine of the two parts of one block's dL/dx."""
    total, branch, shortcut = (p.ravel() for p in parts)
    b, s = float(np.linalg.norm(branch)), float(np.linalg.norm(shortcut))
    return {"total_norm": float(np.linalg.norm(total)), "branch_norm": b, "shortcut_norm": s,
            "ratio": ratio(b, s), "cosine": ratio(float(branch @ shortcut), b * s)}


def without_batch_norm(module):
    """Replace every BatchNorm2d in the module (recursively) by the identity."""
    for name, child in list(module.named_children()):
        if isinstance(child, BatchNorm2d):
            setattr(module, name, Identity())
        else:
            without_batch_norm(child)
    return module


def run(config, directory, progress=print):
    twins = Twins(config, progress)
    rows = []
    for depth in config.depths:
        name = f"resnet{depth}"
        for batch_norm in (True, False):
            model = twins.fresh(name)
            if not batch_norm:
                without_batch_norm(model)
            label = f"{title(name)} {'+ BN' if batch_norm else 'no BN'}"
            for state in ("init", "trained"):
                if state == "trained":
                    twins.train(model, name, lr=None if batch_norm else config.lr_without_bn)
                parts = join_gradients(model, twins.images, twins.labels, config.device)
                rows += [{"model": name, "batch_norm": batch_norm, "state": state, "block": k, **describe(p)}
                         for k, p in enumerate(parts, start=1)]
                progress(summary_line(label, state, [r for r in rows if r["model"] == name and
                                                     r["batch_norm"] == batch_norm and r["state"] == state]))
    lines = conclusion(rows)
    write_rows(directory, "joins", rows, {"config": vars(config), "conclusion": lines})
    return {"rows": rows, "conclusion": lines, "figures": plot(rows, directory, config)}


def summary_line(label, state, rows):
    ratios = [r["ratio"] for r in rows]
    return (f"{label:16s} {state:7s}: ||branch part|| / ||shortcut part|| {times(ratios[0])} at block 1, "
            f"{times(ratios[-1])} at block {len(rows)} (median {times(float(np.median(ratios)))}); median cosine "
            f"{np.median([r['cosine'] for r in rows]):.2f}; ||dL/dx|| block 1 over block {len(rows)} "
            f"{times(ratio(rows[0]['total_norm'], rows[-1]['total_norm']))}")


def conclusion(rows):
    """Where the gradient arrives through the shortcut, and what that does to its size across the depth."""
    lines = []
    for (name, batch_norm, state) in dict.fromkeys((r["model"], r["batch_norm"], r["state"]) for r in rows):
        chosen = [r for r in rows if (r["model"], r["batch_norm"], r["state"]) == (name, batch_norm, state)]
        label = f"{title(name)} {'+ BN' if batch_norm else 'no BN'}, {state}"
        dead = sum(r["total_norm"] == 0 for r in chosen)
        if dead:
            lines.append(f"{label}: dL/dx is exactly 0 at {dead} of {len(chosen)} blocks: no gradient reaches them "
                         f"(the network has died: its loss no longer depends on those blocks)")
            continue
        ratios = np.array([r["ratio"] for r in chosen])
        dominated = int(np.sum(ratios < 1))
        growth = chosen[0]["total_norm"] / chosen[-1]["total_norm"]
        per_block = growth ** (1 / max(len(chosen) - 1, 1))
        lines.append(f"{label}: the shortcut part is the larger at {dominated} of {len(chosen)} joins (median ratio "
                     f"branch/shortcut {times(float(np.median(ratios)))}, median cosine "
                     f"{np.median([r['cosine'] for r in chosen]):.2f}); from the last block to the first ||dL/dx|| "
                     f"changes {times(growth)} ({times(per_block)} per block)")
    return lines


def plot(rows, directory, config):
    plt = pyplot()
    if plt is None:
        return []
    figure, axes = plt.subplots(3, len(config.depths), figsize=(5.5 * len(config.depths), 9), squeeze=False,
                                sharex="col")
    styles = {(True, "init"): ("#48c", "--"), (True, "trained"): ("#048", "-"),
              (False, "init"): ("#d74", "--"), (False, "trained"): ("#a30", "-")}
    for column, depth in enumerate(config.depths):
        for (batch_norm, state), (colour, line) in styles.items():
            chosen = [r for r in rows if r["model"] == f"resnet{depth}" and r["batch_norm"] == batch_norm
                      and r["state"] == state]
            blocks = [r["block"] for r in chosen]
            label = f"{'+ BN' if batch_norm else 'no BN'}, {state}"
            if chosen and all(r["total_norm"] == 0 for r in chosen):  # nothing to draw on a log scale: say so
                axes[0][column].text(0.03, 0.05, f"{label}: dL/dx = 0 at every block (the net has died)",
                                     transform=axes[0][column].transAxes, color=colour, fontsize=8)
            for row, quantity in enumerate(("total_norm", "ratio", "cosine")):
                axes[row][column].plot(blocks, [r[quantity] for r in chosen], line, color=colour, label=label,
                                       marker=".")
        top, middle, bottom = axes[0][column], axes[1][column], axes[2][column]
        top.set(title=f"ResNet-{depth}", yscale="log", ylabel="||dL/dx|| at the block's input")
        middle.set(yscale="log", ylabel="||branch part|| / ||shortcut part||")
        middle.axhline(1, color="grey", linewidth=0.8)
        bottom.set(xlabel="block (input side -> output side)", ylabel="cos(branch part, shortcut part)", ylim=(-1, 1))
        bottom.axhline(0, color="grey", linewidth=0.8)
        for panel in (top, middle, bottom):
            panel.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle("The gradient at every join:\ndL/dx = part through the branch F + part through the shortcut",
                    fontsize=10)
    path = save_figure(figure, directory, "joins")
    plt.close(figure)
    return [path]
