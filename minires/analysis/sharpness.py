"""Sharpness: how curved the training loss is around the weights, measured by its Hessian, at initialisation
and after training, for each residual net and its plain twin (the networks of ``minires landscape``).

- lambda_max, the largest Hessian eigenvalue (the curvature along the sharpest direction; gradient descent
  is stable only for lr < 2 / lambda_max), and lambda_min, the smallest: both from Lanczos (--steps
  Hessian-vector products). Li et al. (2018) measure non-convexity as |lambda_min / lambda_max|.
- the trace of the Hessian (the sum of every curvature) by Hutchinson's estimator (--probes products), with
  its standard error.

Hessian-vector products are central differences of float64 gradients (analysis/hessian.py; their error
against torch's exact Hessian of a small network is measured in tests/test_hessian.py). The loss is the mean
cross-entropy on a fixed subset of training images with batch-norm in evaluation mode, so it is a function of
the weights alone. At initialisation the running statistics are first estimated on the same images, so that
evaluation mode normalises as training mode would (the fresh statistics, mean 0 and variance 1, would leave
the network un-normalised).
"""
import copy
import math
import time
from dataclasses import dataclass

import numpy as np

from .. import backend
from .. import functional as F
from ..errors import ArgumentError
from ..grad_mode import no_grad
from ..nn import BatchNorm2d
from ..tensor import Tensor
from .hessian import hessian_trace, lanczos_eigenvalues
from .output import pyplot, save_figure, write_rows
from .twins import ShortTraining, Twins, depth_of, model_names, title
from .wording import times


@dataclass
class SharpnessConfig(ShortTraining):
    samples: int = 32  # float64 gradients on this many images: each product costs two of them
    steps: int = 12  # Lanczos steps (Hessian-vector products) for lambda_max and lambda_min
    probes: int = 6  # Hutchinson probes (Hessian-vector products) for the trace

    def __post_init__(self):
        super().__post_init__()
        if self.steps < 1 or self.probes < 2:
            raise ArgumentError(f"sharpness: --steps must be at least 1 and --probes at least 2 (the trace's "
                                f"standard error needs two), got {self.steps} and {self.probes}")


def estimate_running_statistics(model, images, device="cpu"):
    """Set every batch-norm's running mean and variance to the statistics of ``images`` (one training-mode
    forward with momentum 1, no gradient), then put the model in evaluation mode."""
    layers = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 1.0
    model.train()
    try:
        with no_grad():
            model(Tensor(images, device=device))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    model.eval()


def measure(model, images, labels, config, rng):
    """lambda_max, lambda_min, the trace (and its standard error) and the loss of a float64 copy of the model."""
    twin = copy.deepcopy(model).double().eval()
    inputs = Tensor(images.astype(np.float64), device=config.device)
    labels = backend.to_device(labels, config.device)

    def loss_fn(m):
        return F.cross_entropy(m(inputs), labels)
    with no_grad():
        loss = float(loss_fn(twin).item())
    ritz = lanczos_eigenvalues(twin, loss_fn, steps=config.steps, rng=rng)
    trace, trace_error = hessian_trace(twin, loss_fn, samples=config.probes, rng=rng)
    return {"loss": loss, "lambda_max": ritz[0], "lambda_min": ritz[-1],
            "non_convexity": abs(ritz[-1] / ritz[0]) if ritz[0] else float("nan"),
            "trace": trace, "trace_error": trace_error}


def run(config, directory, progress=print):
    twins = Twins(config, progress)
    rows = []
    for index, name in enumerate(model_names(config.depths)):
        model = twins.fresh(name)
        for state in ("init", "trained"):
            if state == "trained":
                twins.train(model, name)
            else:
                estimate_running_statistics(model, twins.images, config.device)
            started = time.perf_counter()
            row = {"model": name, "state": state,
                   **measure(model, twins.images, twins.labels, config, np.random.default_rng([config.seed, index]))}
            rows.append(row)
            progress(f"{title(name):10s} {state:7s}: lambda_max {row['lambda_max']:.4g}, lambda_min "
                     f"{row['lambda_min']:.3g}, trace {row['trace']:.4g} +- {row['trace_error']:.2g}, loss "
                     f"{row['loss']:.3g} ({time.perf_counter() - started:.0f} s)")
    lines = conclusion(rows)
    write_rows(directory, "sharpness", rows, {"config": vars(config), "conclusion": lines})
    return {"rows": rows, "conclusion": lines, "figures": plot(rows, directory)}


def _compare(a, b):
    """How a's lambda_max compares with b's, in words and as a factor."""
    ratio = a / b if b else float("inf")
    if not math.isfinite(ratio):
        return "not comparable with", ratio  # times() then says "to inf/NaN"
    word = "sharper than" if ratio > 1.25 else "flatter than" if ratio < 0.8 else "about as sharp as"
    return word, ratio


def conclusion(rows):
    """Plain vs residual at each depth, and shallow vs deep, after training (and at initialisation)."""
    found = {(r["model"], r["state"]): r for r in rows}
    depths = sorted({depth_of(r["model"]) for r in rows})
    lines = []
    for state in ("trained", "init"):
        for depth in depths:
            plain, residual = found.get((f"plain{depth}", state)), found.get((f"resnet{depth}", state))
            if plain and residual:
                word, ratio = _compare(plain["lambda_max"], residual["lambda_max"])
                lines.append(f"{state}, {depth} layers: plain-{depth} is {word} ResNet-{depth} (lambda_max "
                             f"{plain['lambda_max']:.3g} vs {residual['lambda_max']:.3g}, {times(ratio)}; trace "
                             f"{plain['trace']:.3g} vs {residual['trace']:.3g})")
    for kind in ("plain", "resnet"):
        shallow, deep = found.get((f"{kind}{depths[0]}", "trained")), found.get((f"{kind}{depths[-1]}", "trained"))
        if len(depths) > 1 and shallow and deep:
            word, ratio = _compare(deep["lambda_max"], shallow["lambda_max"])
            lines.append(f"trained, depth: {title(deep['model'])} is {word} {title(shallow['model'])} "
                         f"(lambda_max {times(ratio)})")
    return lines


def plot(rows, directory):
    plt = pyplot()
    if plt is None:
        return []
    names = list(dict.fromkeys(r["model"] for r in rows))
    found = {(r["model"], r["state"]): r for r in rows}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    positions = np.arange(len(names))
    for panel, quantity, label in zip(axes, ("lambda_max", "trace"), ("largest Hessian eigenvalue", "Hessian trace")):
        for offset, state, colour in ((-0.2, "init", "#9ab"), (0.2, "trained", "#357")):
            values = [found[(n, state)][quantity] if (n, state) in found else np.nan for n in names]
            errors = [found[(n, state)]["trace_error"] if quantity == "trace" and (n, state) in found else 0
                      for n in names]
            panel.bar(positions + offset, values, 0.4, yerr=errors, color=colour, label=state)
        panel.set(xticks=positions, title=label)
        panel.set_xticklabels([title(n) for n in names])
        if all(found[key][quantity] > 0 for key in found):
            panel.set_yscale("log")
        panel.grid(alpha=0.3, axis="y")
    axes[0].legend()
    figure.suptitle("Sharpness of the training loss: plain vs residual, at initialisation and after training")
    path = save_figure(figure, directory, "sharpness")
    plt.close(figure)
    return [path]
