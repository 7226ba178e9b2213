"""Residual networks behave like ensembles of shallow paths (Veit, Wilber & Belongie 2016).

1. Lesion: in a trained network, replace one block by its shortcut at test time (the block's branch F is
   deleted, y = relu(W_s x)) and measure test accuracy, block by block. A residual network barely notices
   most single deletions; a plain network (there the "shortcut" is the identity, or option A where the
   shape changes) collapses, because every path goes through every layer.
2. Paths: an n-block residual network unrolls into 2^n paths; a path through k residual branches has length
   k, so path lengths follow the binomial distribution C(n, k) / 2^n.
3. Gradient per path length: backpropagate through exactly k randomly chosen branches (and the shortcuts of
   the other blocks) and measure the gradient reaching the first block. Single paths carry less gradient
   the longer they are; weighted by how many paths there are, the total comes mostly from short paths.
"""
import contextlib
import math
import os
from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..backend import l2_norm
from .. import functional as F
from ..function import Function
from ..nn import BasicBlock, Module, Sequential, fuse
from ..tensor import Tensor
from ..training import TrainConfig, Trainer, evaluate_model
from .output import pyplot, save_figure, write_rows
from .wording import percent


@dataclass
class LesionConfig:
    models: tuple[str, ...] = ("resnet20", "plain20")
    data: str = "digits"
    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.1
    samples: int = 8  # random path subsets per path length
    seed: int = 0
    device: str = "cpu"


class Lesioned(Module):
    """A block with its residual branch deleted: only y = relu(W_s x) remains."""

    def __init__(self, block):
        super().__init__()
        self.shortcut = block.downsample  # None in a plain network
        self.out_channels, self.stride = block.conv2.out_channels, block.conv1.stride

    def forward(self, x):
        if self.shortcut is not None:
            return F.relu(self.shortcut(x))
        if self.stride == (1, 1) and self.out_channels == x.shape[1]:
            return x
        return F.shortcut_a(x, self.out_channels, self.stride)  # a plain net has no shortcut: keep the shape, A-style


def blocks_of(model):
    """[(stage, index, block)] for every basic block, input to output."""
    return [(stage, index, block) for _, stage in model.named_children() if isinstance(stage, Sequential)
            for index, block in enumerate(stage) if isinstance(block, BasicBlock)]


def lesion_accuracies(model, test_loader, device):
    rows = []
    for number, (stage, index, block) in enumerate(blocks_of(model), start=1):
        stage[index] = Lesioned(block)
        try:
            _, accuracy = evaluate_model(model, test_loader, device)
        finally:
            stage[index] = block
        rows.append({"block": number, "accuracy": accuracy})
    return rows


class RoutedResidualAdd(Function):
    """relu(out + shortcut) forward; backward sends the gradient through one side only (Veit et al.)."""
    name = "routed_residual_add"

    def forward(self, out, shortcut, through_branch):
        y = kernels.residual_add_forward(out, shortcut, True)
        self.save_for_backward(y)
        self.through_branch = through_branch
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        grad = g * (y > 0)  # d relu(v) = 1 where v > 0
        return (grad, None) if self.through_branch else (None, grad)


class RoutedJoin(Module):
    """A block's join that lets the gradient through the residual branch or through the shortcut, not both."""

    def __init__(self, through_branch):
        super().__init__()
        self.through_branch = through_branch

    def forward(self, out, shortcut):
        return RoutedResidualAdd.apply(out, shortcut, through_branch=self.through_branch)


@contextlib.contextmanager
def routed(blocks, through_branch):
    """Give each block a RoutedJoin (``through_branch[i]`` for block i) and put the blocks' joins back after."""
    joins = [block.join for block in blocks]
    for block, branch in zip(blocks, through_branch):
        block.join = RoutedJoin(branch)
    try:
        yield
    finally:
        for block, join in zip(blocks, joins):
            block.join = join


def path_gradients(model, images, labels, samples, rng, device):
    """Mean ||dL/d(first block's input)|| when backprop goes through exactly k residual branches."""
    blocks = [block for _, _, block in blocks_of(model)]
    n = len(blocks)
    rows = []
    for k in range(n + 1):
        norms = []
        for _ in range(samples):
            chosen = set(rng.choice(n, k, replace=False).tolist())
            captured = {}

            def capture(module, inputs, output):  # returns None: the output stays as it is
                inputs[0].register_hook(lambda g: captured.__setitem__("g", l2_norm(g.array)))
            hook = blocks[0].register_forward_hook(capture)
            try:
                with routed(blocks, [i in chosen for i in range(n)]):
                    x = Tensor(images, requires_grad=True, device=device)
                    F.cross_entropy(model(x), labels).backward()
            finally:
                hook.remove()
            norms.append(captured["g"])
        single = float(np.mean(norms))
        rows.append({"path_length": k, "paths": math.comb(n, k), "fraction_of_paths": math.comb(n, k) / 2 ** n,
                     "gradient_per_path": single, "total_gradient": single * math.comb(n, k)})
    return rows


def run(config, directory, progress=print):
    accuracy_rows, path_rows, trained = [], [], {}
    for name in config.models:
        train_config = TrainConfig(model=name, data=config.data, epochs=config.epochs, batch_size=config.batch_size,
                                   lr=config.lr, seed=config.seed, device=config.device)
        trainer = Trainer(train_config, os.path.join(directory, name))
        summary = trainer.fit()
        fuse(trainer.model, False)  # the paths study routes each block's join: the unfused form calls it
        model, test_loader = trainer.model, trainer.test_loader
        baseline = summary["test_accuracy"]
        rows = lesion_accuracies(model, test_loader, config.device)
        accuracy_rows += [{"model": name, "baseline_accuracy": baseline, **row} for row in rows]
        worst = min(rows, key=lambda r: r["accuracy"])
        progress(f"{name:9s} test accuracy {100 * baseline:.2f}%; with one block deleted: mean "
                 f"{100 * np.mean([r['accuracy'] for r in rows]):.2f}%, worst {100 * worst['accuracy']:.2f}% "
                 f"(block {worst['block']})")
        trained[name] = trainer
    residual_name = next((n for n in config.models if not n.startswith("plain")), None)
    if residual_name is not None:
        trainer = trained[residual_name]
        images, labels = next(trainer.test_loader.batches(0))
        path_rows = path_gradients(trainer.model.eval(), images[:64], labels[:64], config.samples,
                                   np.random.default_rng(config.seed), config.device)
        peak = max(path_rows, key=lambda r: r["total_gradient"])
        progress(f"{residual_name}: {len(path_rows) - 1} blocks, 2^{len(path_rows) - 1} paths; the total gradient "
                 f"peaks at path length {peak['path_length']}")
    lines = conclusion(accuracy_rows, path_rows, model.fc.out_features)
    write_rows(directory, "lesion", accuracy_rows, {"config": vars(config), "paths": path_rows, "conclusion": lines})
    write_rows(directory, "paths", path_rows)
    return {"rows": accuracy_rows, "paths": path_rows, "conclusion": lines,
            "figures": plot(accuracy_rows, path_rows, directory, residual_name, model.fc.out_features)}


def conclusion(rows, path_rows, classes):
    """Per model: how much one deleted block costs, against chance; then where the gradient's paths lie."""
    lines, chance = [], 1 / classes
    for name in dict.fromkeys(r["model"] for r in rows):
        points = [r for r in rows if r["model"] == name]
        baseline, mean = points[0]["baseline_accuracy"], float(np.mean([r["accuracy"] for r in points]))
        worst = min(points, key=lambda r: r["accuracy"])
        kept = (mean - chance) / (baseline - chance) if baseline > chance else float("nan")
        verdict = ("it collapses toward chance: its one path runs through every block" if kept < 0.25 else
                   "most of it survives: the other paths still reach the output" if kept > 0.5 else
                   "about half of what it knows above chance survives")
        lines.append(f"{name}: {percent(baseline)} intact; one block deleted leaves {percent(mean)} on average "
                     f"(worst {percent(worst['accuracy'])}, block {worst['block']}; chance {percent(chance)}): {verdict}")
    if path_rows:
        n = len(path_rows) - 1
        total = sum(r["total_gradient"] for r in path_rows)
        peak = max(path_rows, key=lambda r: r["total_gradient"])
        short = sum(r["total_gradient"] for r in path_rows if r["path_length"] <= n / 2) / total
        lines.append(f"of the 2^{n} paths, the gradient summed over paths of each length peaks at length "
                     f"{peak['path_length']} of {n}; paths through at most half the blocks carry {percent(short)} of "
                     f"it: {'the short paths do most of the work (Veit et al.)' if short > 0.5 else 'longer paths carry most of it here'}")
    return lines


def plot(rows, path_rows, directory, residual_name, classes=None):
    plt = pyplot()
    if plt is None:
        return []
    figure, axes = plt.subplots(1, 3 if path_rows else 1, figsize=(14 if path_rows else 5, 5), squeeze=False)
    axis = axes[0][0]
    for name in dict.fromkeys(r["model"] for r in rows):
        points = [r for r in rows if r["model"] == name]
        axis.plot([r["block"] for r in points], [100 * r["accuracy"] for r in points], "o-",
                  label=f"{name}, one block deleted")
        axis.axhline(100 * points[0]["baseline_accuracy"], linestyle=":", color=axis.lines[-1].get_color(),
                     label=f"{name}, intact ({100 * points[0]['baseline_accuracy']:.1f}%)")
    if classes:
        axis.axhline(100 / classes, linestyle="--", color="grey", label=f"chance ({100 / classes:.0f}%)")
    axis.set(xlabel="deleted block", ylabel="test accuracy (%)", title="Deleting one block at test time")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)  # below: never on a curve
    if path_rows:
        lengths = [r["path_length"] for r in path_rows]
        axes[0][1].bar(lengths, [r["fraction_of_paths"] for r in path_rows])
        axes[0][1].set(xlabel="path length (residual branches on the path)", ylabel="fraction of paths",
                       title=f"Path lengths in {residual_name} (binomial)")
        axes[0][2].plot(lengths, [r["gradient_per_path"] for r in path_rows], "o-", label="one path")
        axes[0][2].plot(lengths, [r["total_gradient"] for r in path_rows], "s-", label="all paths of that length")
        axes[0][2].set(xlabel="path length", ylabel="gradient norm at the first block", yscale="log",
                       title="Gradient carried by paths of each length")
        axes[0][2].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        for axis in axes[0][1:]:
            axis.grid(alpha=0.3)
    path = save_figure(figure, directory, "lesion")
    plt.close(figure)
    return [path]
