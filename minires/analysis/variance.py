"""Forward signal variance at each block's output, at initialisation.

A residual block outputs x + F(x). With F independent of x, Var(x + F(x)) = Var(x) + Var(F(x)): without
normalisation and with Kaiming's initialisation F roughly preserves its input's scale, so the variance about
doubles per block and grows exponentially with depth. With batch-norm closing each branch, Var(F(x)) is
about 1 whatever x is, so each block adds about one unit: linear growth (Prince, Understanding Deep
Learning, ch. 11). A plain net with Kaiming's initialisation keeps the variance roughly constant.
"""
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..grad_mode import no_grad
from ..tensor import Tensor
from .common import ARCHITECTURES, label, training_batches
from .labnet import ACTIVATIONS, INITS, LabNet
from .output import finite, mark_non_finite, pyplot, save_figure, write_rows
from .wording import times


@dataclass
class VarianceConfig:
    blocks: int = 54  # 110 weighted layers
    init: Literal[INITS] = "kaiming"
    std: float | None = None
    activation: Literal[tuple(ACTIVATIONS)] = "relu"
    batch_size: int = 64
    data: str = "digits"
    seed: int = 0
    device: str = "cpu"


def block_variances(model, images):
    """Var of the stem's output (block 0) and of every block's output, over the batch and all units."""
    outputs = []
    handles = [block.register_forward_hook(lambda m, i, o: outputs.append(o.numpy().astype(np.float64)))
               for block in model.blocks]
    stem = model.stem.register_forward_hook(lambda m, i, o: outputs.append(o.numpy().astype(np.float64)))
    with no_grad(), np.errstate(all="ignore"):
        model(images)
    for handle in handles + [stem]:
        handle.remove()
    with np.errstate(all="ignore"):
        return [float(o.var()) for o in outputs]


def run(config, directory, progress=print):
    bundle, loader, _ = training_batches(config.data, config.batch_size, config.seed)
    images, _ = next(loader.batches(0))
    rows, headline = [], []
    for residual, batch_norm in [(a == "residual", bn) for a, bn in ARCHITECTURES]:
        model = LabNet(config.blocks, residual, batch_norm, config.activation, config.init, config.std,
                       in_channels=bundle.input_shape[0], num_classes=len(bundle.classes), seed=config.seed)
        variances = block_variances(model.to(config.device), Tensor(images, device=config.device))
        name = label(residual, batch_norm)
        rows += [{"architecture": name, "block": i, "variance": v} for i, v in enumerate(variances)]
        growth = variances[-1] / variances[1] if variances[1] else float("inf")
        headline.append({"architecture": name, "first_block": variances[1], "last_block": variances[-1],
                         "growth": growth})
        progress(f"{name:18s} variance after block 1: {variances[1]:.3g}, after block {config.blocks}: "
                 f"{variances[-1]:.3g} (x{growth:.3g})")
    lines = conclusion(rows, config)
    write_rows(directory, "variance", rows, {"config": vars(config), "headline": headline, "conclusion": lines})
    return {"rows": rows, "headline": headline, "conclusion": lines, "figures": plot(rows, directory, config)}


def growth_shape(variances):
    """How a series of block variances grows, from the numbers: per-block factor of a geometric fit and the
    slope and R^2 of a linear fit (blocks 1 to the last; block 0 is the stem)."""
    values = np.asarray(variances[1:], np.float64)
    blocks = np.arange(1, len(values) + 1)
    if len(values) < 3 or not np.isfinite(values).all() or (values <= 0).any():
        return {"kind": "non-finite", "per_block": float("nan"), "slope": float("nan"), "r2": float("nan")}
    per_block = float(np.exp(np.polyfit(blocks, np.log(values), 1)[0]))
    slope, intercept = np.polyfit(blocks, values, 1)
    residual = values - (slope * blocks + intercept)
    spread = ((values - values.mean()) ** 2).sum()
    r2 = float(1 - (residual ** 2).sum() / spread) if spread else 1.0
    growth = values[-1] / values[0]
    if per_block > 1.2 and growth > 100:
        kind = "exponential"
    elif growth > 2 and r2 > 0.95:
        kind = "linear"
    elif 0.5 <= growth <= 2:
        kind = "flat"
    else:
        kind = "growing" if growth > 1 else "shrinking"
    return {"kind": kind, "per_block": per_block, "slope": float(slope), "r2": r2}


def conclusion(rows, config):
    lines = []
    for name in dict.fromkeys(r["architecture"] for r in rows):
        series = [r["variance"] for r in rows if r["architecture"] == name]
        shape = growth_shape(series)
        first, last = series[1], series[-1]
        start = f"{name}: variance {first:.3g} after block 1, {last:.3g} after block {config.blocks}"
        if shape["kind"] == "exponential":
            lines.append(f"{start} ({times(last / first)}, {times(shape['per_block'])} per block): exponential"
                         + (", the join adds Var(F(x)) ~ Var(x) at every block" if name.startswith("residual") else ""))
        elif shape["kind"] == "linear":
            why = ": each join adds the variance of a batch-normed branch, about the same every time"
            lines.append(f"{start}: linear, {shape['slope']:+.3g} per block (a straight line fits, R^2 "
                         f"{shape['r2']:.3f})" + (why if name.startswith("residual") else ""))
        elif shape["kind"] == "flat":
            lines.append(f"{start}: flat (within a factor 2)")
        elif shape["kind"] == "non-finite":
            lines.append(f"{start}: overflowed to inf/NaN")
        else:
            lines.append(f"{start}: {shape['kind']} {times(last / first)} ({times(shape['per_block'])} per block)")
    return lines


def plot(rows, directory, config):
    """Left: every family on a log axis (exponential growth is a straight line there). Right: the families
    that stay finite and small on a linear axis, where the linear growth with batch-norm is a straight line."""
    plt = pyplot()
    if plt is None:
        return []
    figure, (log_axis, linear_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(dict.fromkeys(r["architecture"] for r in rows))
    colours = {name: f"C{i}" for i, name in enumerate(names)}
    for name in names:
        series = [r["variance"] for r in rows if r["architecture"] == name]
        good, bad = finite(series)
        log_axis.plot([i for i, _ in good], [v for _, v in good], label=name, color=colours[name])
        mark_non_finite(log_axis, bad, colours[name], name, total=len(series))
        if name.endswith("+ BN"):
            linear_axis.plot([i for i, _ in good], [v for _, v in good], label=name, color=colours[name])
            shape = growth_shape(series)
            if shape["kind"] == "linear":
                blocks = np.arange(1, len(series))
                intercept = np.mean(series[1:]) - shape["slope"] * blocks.mean()
                linear_axis.plot(blocks, shape["slope"] * blocks + intercept, ":", color="black", linewidth=1)
                linear_axis.annotate(f"{name}: {shape['slope']:+.2f} per block (R² {shape['r2']:.3f})",
                                     (blocks[len(blocks) // 2], shape["slope"] * blocks[len(blocks) // 2] + intercept),
                                     textcoords="offset points", xytext=(-120, 25), fontsize=8,
                                     arrowprops=dict(arrowstyle="->", color="grey"))
    log_axis.set(yscale="log", xlabel="block (0 = stem output)", ylabel="activation variance",
                 title="all four, log scale: exponential growth is a straight line")
    linear_axis.set(xlabel="block (0 = stem output)", ylabel="activation variance",
                    title="with batch-norm, linear scale: linear growth is a straight line")
    for axis in (log_axis, linear_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"Forward variance at initialisation ({2 * config.blocks + 2} layers, {config.init} init)")
    path = save_figure(figure, directory, "variance")
    plt.close(figure)
    return [path]
