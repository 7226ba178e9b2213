"""Shattered gradients (Balduzzi et al. 2017): the gradient of a network's output with respect to its input,
along a line of inputs.

A network with one input and one output is evaluated at 256 points x in [-2, 2]; we record dy/dx at each.
In a deep plain network neighbouring points have nearly unrelated gradients — the signal looks like white
noise and its autocorrelation at lag 1 drops toward 0 as depth grows. In a residual network the gradient
stays correlated (brown noise): a smooth function of x. Batch-norm uses the statistics of the whole line of
points (fixed after one pass, so every point's gradient is its own).
"""
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..nn import BatchNorm2d
from ..tensor import Tensor
from .labnet import INITS, LabMLP
from .output import pyplot, save_figure, write_rows


@dataclass
class ShatteredConfig:
    blocks: tuple[int, ...] = (1, 4, 12, 24)  # 4, 10, 26 and 50 weighted layers
    points: int = 256
    width: int = 200
    batch_norm: bool = True
    preact: bool = True  # pre-activation blocks: nothing but the identity on the skip path
    init: Literal[INITS] = "kaiming"
    std: float | None = None
    seed: int = 0
    device: str = "cpu"


def autocorrelation(signal, max_lag=20):
    centred = np.asarray(signal, np.float64) - np.mean(signal)
    energy = float((centred * centred).sum())
    if energy == 0 or not np.isfinite(energy):
        return [float("nan")] * (max_lag + 1)
    return [float((centred[:len(centred) - k] * centred[k:]).sum() / energy) for k in range(max_lag + 1)]


def input_gradients(model, points, device="cpu"):
    """dy/dx at every point of the line (batch-norm statistics fixed to those of the line first)."""
    x = np.linspace(-2.0, 2.0, points, dtype=np.float32)[:, None]
    batch_norms = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    for bn in batch_norms:
        bn.momentum = 1.0  # running statistics := the line's statistics
    model.train()
    model(Tensor(x, device=device))
    model.eval()
    inputs = Tensor(x, requires_grad=True, device=device)
    model(inputs).sum().backward()
    return x[:, 0], inputs.grad.numpy()[:, 0].astype(np.float64)


def run(config, directory, progress=print):
    rows, signals = [], {}
    for residual in (False, True):
        for blocks in config.blocks:
            model = LabMLP(blocks, residual, config.batch_norm, "relu", config.init, config.std, config.width,
                           config.preact, seed=config.seed).to(config.device)
            x, gradient = input_gradients(model, config.points, config.device)
            correlation = autocorrelation(gradient)
            name = f"{'residual' if residual else 'plain'}"
            rows.append({"architecture": name, "layers": 2 * blocks + 2, "lag1_autocorrelation": correlation[1],
                         "lag5_autocorrelation": correlation[5]})
            signals[f"{name} {2 * blocks + 2}"] = {"gradient": gradient.tolist(), "autocorrelation": correlation}
            progress(f"{name:9s} {2 * blocks + 2:3d} layers: autocorrelation of dy/dx at lag 1 {correlation[1]:.3f}")
    write_rows(directory, "shattered", rows, {"config": vars(config), "signals": signals, "x": x.tolist()})
    return {"rows": rows, "signals": signals, "figures": plot(x, signals, directory, config)}


def plot(x, signals, directory, config):
    plt = pyplot()
    if plt is None:
        return []
    names = list(signals)
    depths = len(config.blocks)
    figure, axes = plt.subplots(2, depths, figsize=(3.2 * depths, 5.5), squeeze=False, sharex=True)
    for i, name in enumerate(names):
        gradient = np.asarray(signals[name]["gradient"])
        scale = np.abs(gradient).max() or 1.0
        axis = axes[i // depths][i % depths]
        axis.plot(x, gradient / scale, linewidth=0.8)
        axis.set_title(name + " layers", fontsize=9)
        axis.set_ylim(-1.05, 1.05)
    for axis in axes[-1]:
        axis.set_xlabel("input x")
    for row in axes:
        row[0].set_ylabel("dy/dx (scaled)")
    figure.suptitle("Gradient along a line of inputs: plain (top) vs residual (bottom)")
    paths = [save_figure(figure, directory, "shattered_gradients")]
    plt.close(figure)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, kind in zip(axes, ("plain", "residual")):
        for name in names:
            if name.startswith(kind):
                axis.plot(signals[name]["autocorrelation"], marker=".", label=name.split()[1] + " layers")
        axis.set(title=kind, xlabel="lag (points)")
        axis.grid(alpha=0.3)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="depth")  # beside the curves, never on them
    axes[0].set_ylabel("autocorrelation of dy/dx")
    paths.append(save_figure(figure, directory, "shattered_autocorrelation"))
    plt.close(figure)
    return paths
