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
    # 4, 10, 18 and 26 weighted layers: where plain and residual differ (measured over seeds 0-2, the plain net is
    # white noise from 18 layers while the residual net keeps a lag-1 autocorrelation of 0.5-0.65 there; by 50
    # layers the residual net of this width decorrelates too, 0.17-0.37, and the figure would show two noisy curves)
    blocks: tuple[int, ...] = (1, 4, 8, 12)
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
    lines = conclusion(rows)
    write_rows(directory, "shattered", rows, {"config": vars(config), "signals": signals, "x": x.tolist(),
                                              "conclusion": lines})
    return {"rows": rows, "signals": signals, "conclusion": lines, "figures": plot(x, signals, directory, config)}


def smoothness(correlation):
    """A lag-1 autocorrelation in words: near 1 a smooth curve, near 0 white noise."""
    if not np.isfinite(correlation):
        return "not finite"
    if correlation > 0.8:
        return "smooth"
    if correlation > 0.4:
        return "correlated (brown noise)"
    if correlation > 0.2:
        return "weakly correlated"
    return "white noise"


def conclusion(rows):
    """Per depth, plain against residual; then the depth where they differ most."""
    by_depth = {}
    for row in rows:
        by_depth.setdefault(row["layers"], {})[row["architecture"]] = row["lag1_autocorrelation"]
    pairs = {depth: (found["plain"], found["residual"]) for depth, found in by_depth.items()
             if {"plain", "residual"} <= set(found)}
    lines = ["lag-1 autocorrelation of dy/dx (1 = smooth, 0 = white noise), plain vs residual: " +
             ", ".join(f"{depth} layers {p:.2f} vs {r:.2f}" for depth, (p, r) in pairs.items())]
    if pairs:
        depth, (plain, residual) = max(pairs.items(), key=lambda item: item[1][1] - item[1][0])
        verb = "stays" if residual > plain else "is no more correlated than the plain net's:"
        lines.append(f"at {depth} layers the plain net's gradient is {smoothness(plain)} ({plain:.2f}) while the "
                     f"residual net's {verb} {smoothness(residual)} ({residual:.2f})" +
                     (": the shortcuts keep the gradient of nearby inputs related" if residual - plain > 0.2 else ""))
    return lines


def plot(x, signals, directory, config):
    plt = pyplot()
    if plt is None:
        return []
    names = list(signals)
    depths = len(config.blocks)
    figure, axes = plt.subplots(2, depths, figsize=(3.2 * depths, 5.5), squeeze=False, sharex=True)
    for i, name in enumerate(names):
        gradient = np.asarray(signals[name]["gradient"])
        scale = np.percentile(np.abs(gradient), 98) or 1.0  # one spike must not flatten the rest of the curve
        axis = axes[i // depths][i % depths]
        axis.plot(x, gradient / scale, linewidth=0.8)
        axis.set_title(f"{name} layers (r1 = {signals[name]['autocorrelation'][1]:.2f})", fontsize=9)
        axis.set_ylim(-1.6, 1.6)
    for axis in axes[-1]:
        axis.set_xlabel("input x")
    for row in axes:
        row[0].set_ylabel("dy/dx (scaled)")
    figure.suptitle("Gradient along a line of inputs: plain (top) vs residual (bottom); lag-1 autocorrelation "
                    "in each title\n(depths where they differ: by ~50 layers this residual net decorrelates too)",
                    fontsize=10)
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
