"""Gradient flow: the norm of the gradient at every layer, from the input to the output.

For plain and residual nets of several depths, with and without batch-norm, we record at initialisation and
after a few SGD steps the norms ||dL/dW_l|| of every layer's weights and ||dL/dh_l|| of every layer's
output h_l (read with tensor hooks). What to look for (He et al. 2015; Glorot & Bengio 2010):
- a plain net without BN initialised below Kaiming's scale loses a constant factor of gradient per layer:
  the norm falls by orders of magnitude toward the input (vanishing); above it, it grows (exploding);
- batch-norm or the residual shortcuts keep the norms within a small factor across the whole depth.
Non-finite norms (overflow) are kept as inf/NaN in the numbers and marked in the figures.
"""
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .. import functional as F
from ..backend import l2_norm
from ..optim import SGD
from ..tensor import Tensor
from .common import ARCHITECTURES, label, training_batches
from .labnet import ACTIVATIONS, INITS, LabNet
from .output import finite, mark_non_finite, pyplot, save_figure, write_rows
from .variance import block_variances
from .wording import times, trend


@dataclass
class GradflowConfig:
    blocks: tuple[int, ...] = (3, 9, 27)  # 8, 20 and 56 weighted layers
    init: Literal[INITS] = "kaiming"
    std: float | None = None  # for init "normal"
    activation: Literal[tuple(ACTIVATIONS)] = "relu"
    steps: int = 10  # SGD steps between the two measurements
    batch_size: int = 64
    lr: float = 0.02
    data: str = "digits"
    seed: int = 0
    device: str = "cpu"


def layer_gradients(model, images, labels):
    """[(layer name, ||dL/dW||, ||dL/dh||)] for every weighted layer, input to output, for one batch."""
    layers = model.weighted_layers()
    activation_norms, handles = {}, []
    for name, module in layers:
        def keep(module, inputs, output, name=name):
            output.register_hook(lambda g: activation_norms.__setitem__(name, l2_norm(g.array)))
        handles.append(module.register_forward_hook(keep))
    model.zero_grad()
    with np.errstate(all="ignore"):
        F.cross_entropy(model(images), labels).backward()
    for handle in handles:
        handle.remove()
    return [(name, l2_norm(module.weight.grad.array), activation_norms.get(name, float("nan"))) for name, module in layers]


def run(config, directory, progress=print):
    bundle, loader, _ = training_batches(config.data, config.batch_size, config.seed)
    batches = loader.batches(0)
    first_images, first_labels = next(batches)
    rows, models_seen = [], []
    for residual, batch_norm in [(a == "residual", bn) for a, bn in ARCHITECTURES]:
        for blocks in config.blocks:
            model = LabNet(blocks, residual, batch_norm, config.activation, config.init, config.std,
                           in_channels=bundle.input_shape[0], num_classes=len(bundle.classes),
                           seed=config.seed).to(config.device)
            images = Tensor(first_images, device=config.device)
            stages = [("init", layer_gradients(model, images, first_labels))]
            growth = _variance_growth(model, images)
            optimizer = SGD(model.parameters(), lr=config.lr, momentum=0.9)
            diverged_at = None  # the first step whose training loss was inf/NaN
            for step, (x, y) in zip(range(1, config.steps + 1), loader.batches(1)):
                model.zero_grad()
                with np.errstate(all="ignore"):
                    loss = F.cross_entropy(model(Tensor(x, device=config.device)), y)
                    loss.backward()
                if diverged_at is None and not np.isfinite(loss.item()):
                    diverged_at = step
                optimizer.step()
            models_seen.append({"architecture": label(residual, batch_norm), "layers": 2 * blocks + 2,
                                "blocks": blocks, "variance_growth": growth, "diverged_at": diverged_at})
            stages.append((f"after {config.steps} steps", layer_gradients(model, images, first_labels)))
            for stage, measured in stages:
                for index, (name, weight_norm, activation_norm) in enumerate(measured, start=1):
                    rows.append({"architecture": label(residual, batch_norm), "residual": residual,
                                 "batch_norm": batch_norm, "layers": 2 * blocks + 2, "stage": stage, "layer": index,
                                 "name": name, "weight_grad_norm": weight_norm, "activation_grad_norm": activation_norm})
            progress(f"{label(residual, batch_norm):18s} {2 * blocks + 2:3d} layers: ||dL/dh|| first layer / last "
                     f"layer {_ratio(stages[0][1]):.3g} at init, {_ratio(stages[1][1]):.3g} {stages[1][0]}")
    headline = summarise(rows)
    lines = conclusion(headline, models_seen, config)
    write_rows(directory, "gradflow", rows, {"config": vars(config), "headline": headline, "models": models_seen,
                                             "conclusion": lines})
    figures = plot(rows, directory, config)
    return {"rows": rows, "headline": headline, "models": models_seen, "conclusion": lines, "figures": figures}


def _variance_growth(model, images):
    """Var(last block's output) / Var(stem's output) at initialisation: how much the forward signal grew."""
    variances = block_variances(model, images)
    with np.errstate(all="ignore"):
        return float(np.float64(variances[-1]) / np.float64(variances[0])) if variances[0] else float("inf")


def conclusion(headline, models_seen, config):
    """The experiment's message in words, from the numbers: at the deepest depth, what the gradient does on
    its way to the input in each family, and why a net that diverged did."""
    deepest = max(2 * b + 2 for b in config.blocks)
    lines = []
    for row in headline:
        if row["layers"] == deepest and row["stage"] == "init":
            lines.append(f"{row['architecture']}, {deepest} layers at init: ||dL/dh|| at the first layer is "
                         f"{times(row['first_over_last'])} that at the last: {trend(row['first_over_last'])}")
    for seen in models_seen:
        if seen["diverged_at"] is None:
            continue
        per_block = seen["variance_growth"] ** (1 / (seen["blocks"] + 1)) if seen["variance_growth"] > 0 else 0.0
        cause = (f"the forward variance grew {times(seen['variance_growth'])} over {seen['blocks']} blocks "
                 f"({times(per_block)} per block")
        cause += (": the join adds the branch's variance to the shortcut's at every block)"
                  if seen["architecture"].startswith("residual") and per_block > 1.2 else ")")
        lines.append(f"{seen['architecture']}, {seen['layers']} layers: the training loss became NaN/inf at step "
                     f"{seen['diverged_at']} of {config.steps}; at init {cause}")
    return lines


def _ratio(measured):
    """||dL/dh|| at the first layer's output over that at the last's: < 1 the gradient vanishes on its way
    to the input, > 1 it explodes. (Weight gradients would hide this: ||dL/dW_l|| also scales with the
    forward signal reaching layer l, which shrinks or grows with the same initialisation.)"""
    first, last = measured[0][2], measured[-1][2]
    with np.errstate(all="ignore"):
        return float(np.float64(first) / np.float64(last)) if last else float("inf")


def summarise(rows):
    table = {}
    for row in rows:
        key = (row["architecture"], row["layers"], row["stage"])
        table.setdefault(key, []).append((row["name"], row["weight_grad_norm"], row["activation_grad_norm"]))
    return [{"architecture": a, "layers": n, "stage": s, "first_over_last": _ratio(measured)}
            for (a, n, s), measured in table.items()]


def plot(rows, directory, config):
    plt = pyplot()
    if plt is None:
        return []
    paths = []
    stages = list(dict.fromkeys(row["stage"] for row in rows))
    architectures = list(dict.fromkeys(row["architecture"] for row in rows))
    for stage in stages:
        for scale in ("log", "linear"):
            # One y-axis per row: the architectures compare at a glance.
            figure, axes = plt.subplots(2, len(architectures), figsize=(4 * len(architectures), 7), squeeze=False,
                                        sharey="row", sharex=True)
            for column, architecture in enumerate(architectures):
                for row_index, quantity in enumerate(("weight_grad_norm", "activation_grad_norm")):
                    axis = axes[row_index][column]
                    for layers in sorted({r["layers"] for r in rows}):
                        series = [r[quantity] for r in rows if r["architecture"] == architecture
                                  and r["stage"] == stage and r["layers"] == layers]
                        good, bad = finite(series)
                        line = axis.plot([i + 1 for i, _ in good], [v for _, v in good], label=f"{layers} layers")
                        mark_non_finite(axis, [i + 1 for i in bad], line[0].get_color(), f"{layers} layers",
                                        total=len(series))
                    if scale == "log" and any(line.get_ydata().size for line in axis.lines):
                        axis.set_yscale("log")
                    axis.tick_params(labelleft=True, labelbottom=True)  # shared, but each panel keeps its numbers
                    axis.grid(alpha=0.3)
                    axis.set_xlabel("layer (input -> output)")
                    axis.set_title(f"{architecture}: ||dL/d{'W' if row_index == 0 else 'h'}||", fontsize=10)
                    if column == 0:
                        axis.set_ylabel("weight gradient norm" if row_index == 0 else "activation gradient norm")
            figure.suptitle(f"Gradient norms per layer, {stage} ({config.init} init, {config.activation}), "
                            f"{scale} scale")
            handles = [line for line in axes[0][0].lines if not line.get_label().startswith("_")]
            figure.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=len(handles),
                          frameon=False)  # one legend for every panel: it never covers a curve
            name = f"gradflow_{'init' if stage == 'init' else 'trained'}_{scale}"
            paths.append(save_figure(figure, directory, name, legend_below=True))
            plt.close(figure)
    return paths
