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
    write_rows(directory, "variance", rows, {"config": vars(config), "headline": headline})
    return {"rows": rows, "headline": headline, "figures": plot(rows, directory, config)}


def plot(rows, directory, config):
    plt = pyplot()
    if plt is None:
        return []
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["architecture"] for r in rows):
        series = [r["variance"] for r in rows if r["architecture"] == name]
        good, bad = finite(series)
        line = axis.plot([i for i, _ in good], [v for _, v in good], label=name)
        mark_non_finite(axis, bad, line[0].get_color(), name, total=len(series))
    axis.set(yscale="log", xlabel="block (0 = stem output)", ylabel="activation variance",
             title=f"Forward variance at initialisation ({2 * config.blocks + 2} layers, {config.init} init)")
    axis.grid(alpha=0.3)
    axis.legend()
    path = save_figure(figure, directory, "variance")
    plt.close(figure)
    return [path]
