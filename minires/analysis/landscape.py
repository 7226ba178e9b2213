"""Loss landscapes (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets"):
around a trained network's weights w, the training loss on the plane

    L(w + a d1 + b d2),   a, b in [-span, span]

spanned by two random directions d1, d2, and on the line L(w + a d1). The directions are *filter-normalised*:
Gaussian, then each filter of d (one output channel of a convolution, one row of a linear layer) is rescaled to
the norm of the same filter of w, so a step of 1 moves every filter by its own size. Without that, a net whose
filters are small would look sharp and one whose filters are large flat, though batch-norm makes the network
the same function of its filters at any scale. As in the paper, parameters with one axis (biases, batch-norm
weights and biases) are held where training left them (their direction is 0), and batch-norm runs in
evaluation mode, so the loss is a function of the weights alone.

Li et al. find that plain networks' surfaces turn chaotic and non-convex as they get deeper, while residual
networks' stay smooth and convex-looking at the same depth. This command trains plain-20, ResNet-20, plain-56
and ResNet-56 briefly on the embedded digits (or loads ``minires train`` run directories with --checkpoint),
measures each surface on a fixed subset of training images, and how non-convex it is: the share of the grid
where the surface curves downward in some direction (the 2-D second differences have a negative eigenvalue
larger than 10% of the positive one; Li et al. map the same ratio |lambda_min / lambda_max|).
"""
import math
import os
import time
from dataclasses import dataclass, replace

import numpy as np

from .. import backend
from .. import functional as F
from ..errors import ArgumentError
from ..grad_mode import no_grad
from ..tensor import Tensor
from ..training.inference import load_trained
from .output import pyplot, save_figure, write_rows
from .twins import ShortTraining, Twins, depth_of, model_names, title

NON_CONVEX_RATIO = 0.1  # a point is non-convex when lambda_min < -0.1 |lambda_max| of its second differences


@dataclass
class LandscapeConfig(ShortTraining):
    grid: int = 25  # points per axis of the 2-D surface (odd: the trained weights are its centre)
    span: float = 1.0  # the surface covers [-span, span]^2 in units of the filter-normalised directions
    line_points: int = 51  # points of the 1-D curve over [-span, span]
    checkpoint: tuple[str, ...] = ()  # minires train run directories to use instead of training (sets the models)

    def __post_init__(self):
        super().__post_init__()
        if min(self.grid, self.line_points) < 3 or not self.grid % 2 or not self.line_points % 2:
            raise ArgumentError(f"landscape: --grid and --line-points must be odd numbers from 3 on (so that the "
                                f"trained weights are a point of each), got {self.grid} and {self.line_points}")
        if not (self.span > 0 and math.isfinite(self.span)):
            raise ArgumentError(f"landscape: --span must be a positive number, got {self.span}")


def filter_normalized_direction(model, rng):
    """A random direction in weight space, {parameter name: array}: Gaussian, each filter (the slice along the
    first axis) rescaled to the norm of the same filter of the weights; zero for one-axis parameters."""
    direction = {}
    for name, parameter in model.named_parameters():
        weight = backend.to_numpy(parameter.array).astype(np.float64)
        if weight.ndim <= 1:  # biases and batch-norm weights and biases stay fixed (Li et al.)
            direction[name] = np.zeros_like(weight)
            continue
        d = rng.standard_normal(weight.shape)
        filters_w = np.linalg.norm(weight.reshape(len(weight), -1), axis=1)
        filters_d = np.linalg.norm(d.reshape(len(d), -1), axis=1)
        direction[name] = d * (filters_w / filters_d).reshape((-1,) + (1,) * (weight.ndim - 1))
    return direction


def weights_of(model):
    """{parameter name: float64 copy}: the centre the directions are added to."""
    return {name: backend.to_numpy(p.array).astype(np.float64) for name, p in model.named_parameters()}


def evaluation_loss(model, images, labels, device="cpu"):
    """The mean cross-entropy on the images with batch-norm in evaluation mode."""
    model.eval()
    with no_grad():
        logits = model(Tensor(images, device=device))
        return float(F.cross_entropy(logits, backend.to_device(labels, device)).item())


def losses_along(model, centre, directions, points, images, labels, device="cpu"):
    """The evaluation loss at centre + sum_i c_i d_i for each tuple of coefficients c in ``points``; the
    model's weights are put back to the centre afterwards."""
    parameters = dict(model.named_parameters())
    losses = []
    try:
        for coefficients in points:
            for name, parameter in parameters.items():
                moved = centre[name] + sum(c * d[name] for c, d in zip(coefficients, directions))
                parameter.array[...] = backend.to_device(moved.astype(parameter.dtype), device)
            losses.append(evaluation_loss(model, images, labels, device))
    finally:
        for name, parameter in parameters.items():
            parameter.array[...] = backend.to_device(centre[name].astype(parameter.dtype), device)
    return losses


def axis(points, span):
    """``points`` (odd) coefficients over [-span, span], symmetric, with an exact 0 in the middle."""
    half = (points - 1) / 2
    return span * (np.arange(points) - half) / half


def non_convex_fraction(surface, step):
    """The share of interior grid points where the surface's 2-D second differences have an eigenvalue below
    -NON_CONVEX_RATIO times the largest one's magnitude (it curves down in some direction)."""
    z = np.asarray(surface, np.float64)
    xx = (z[2:, 1:-1] - 2 * z[1:-1, 1:-1] + z[:-2, 1:-1]) / step ** 2
    yy = (z[1:-1, 2:] - 2 * z[1:-1, 1:-1] + z[1:-1, :-2]) / step ** 2
    xy = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * step ** 2)
    middle, radius = (xx + yy) / 2, np.sqrt(((xx - yy) / 2) ** 2 + xy ** 2)
    low, high = middle - radius, middle + radius  # the eigenvalues of [[xx, xy], [xy, yy]]
    with np.errstate(invalid="ignore"):
        bent = low < -NON_CONVEX_RATIO * np.abs(high)
    return float(np.mean(bent & np.isfinite(low)))


def local_minima(curve):
    """How many interior points of a 1-D curve lie below both neighbours."""
    c = np.asarray(curve, np.float64)
    return int(np.sum((c[1:-1] < c[:-2]) & (c[1:-1] < c[2:])))


def describe(name, surface, line, config, trained):
    """One row: how the surface around ``name``'s weights looks, in numbers."""
    surface = np.asarray(surface)
    edge = np.concatenate([surface[0], surface[-1], surface[1:-1, 0], surface[1:-1, -1]])
    middle = config.grid // 2
    return {"model": name, **trained,
            "centre_loss": float(surface[middle, middle]),
            "min_loss": float(np.nanmin(surface)), "edge_median_loss": float(np.nanmedian(edge)),
            "non_convex_fraction": non_convex_fraction(surface, 2 * config.span / (config.grid - 1)),
            "line_local_minima": local_minima(line), "non_finite_points": int(np.sum(~np.isfinite(surface)))}


def _models(config, progress):
    """(twins, [(name, model, what training did)]): trained here, or loaded from --checkpoint run directories."""
    if not config.checkpoint:
        twins = Twins(config, progress)
        chosen = []
        for name in model_names(config.depths):
            model = twins.fresh(name)
            last = twins.train(model, name)
            chosen.append((name, model, {"test_error": last["test_error"]}))
        return twins, chosen
    loaded = [(directory, *load_trained(directory, config.device)) for directory in config.checkpoint]
    datas = {run.data for _, _, run, _ in loaded}
    if len(datas) > 1:
        raise ArgumentError(f"landscape: the checkpoints were trained on different data ({', '.join(sorted(datas))}); "
                            f"a shared surface needs the same images")
    names = [run.model for _, _, run, _ in loaded]
    if len(set(names)) < len(names):
        raise ArgumentError(f"landscape: the checkpoints hold the same model more than once ({', '.join(names)}); "
                            f"give one run per model")
    twins = Twins(replace(config, data=datas.pop()), progress)
    return twins, [(run.model, model, {"checkpoint": directory}) for directory, model, run, _ in loaded]


def run(config, directory, progress=print):
    twins, chosen = _models(config, progress)
    alphas, line = axis(config.grid, config.span), axis(config.line_points, config.span)
    grid_rows, line_rows, summary, surfaces, curves = [], [], [], {}, {}
    for index, (name, model, trained) in enumerate(chosen):
        started = time.perf_counter()
        rng = np.random.default_rng([config.seed, index])
        centre = weights_of(model)
        d1, d2 = filter_normalized_direction(model, rng), filter_normalized_direction(model, rng)
        points = [(a, b) for a in alphas for b in alphas]
        values = losses_along(model, centre, (d1, d2), points, twins.images, twins.labels, config.device)
        surface = np.asarray(values).reshape(config.grid, config.grid)  # surface[i, j] = L(w + a_i d1 + a_j d2)
        curve = losses_along(model, centre, (d1,), [(a,) for a in line], twins.images, twins.labels, config.device)
        grid_rows += [{"model": name, "alpha": a, "beta": b, "loss": v} for (a, b), v in zip(points, values)]
        line_rows += [{"model": name, "alpha": a, "loss": v} for a, v in zip(line, curve)]
        surfaces[name], curves[name] = surface, curve
        summary.append(describe(name, surface, curve, config, trained))
        row = summary[-1]
        progress(f"{title(name):10s} surface {config.grid}x{config.grid} in {time.perf_counter() - started:.0f} s: "
                 f"loss {row['centre_loss']:.3g} at the weights, median {row['edge_median_loss']:.3g} on the edge, "
                 f"non-convex at {100 * row['non_convex_fraction']:.1f}% of the grid")
    lines = conclusion(summary, len(twins.bundle.classes))
    write_rows(directory, "landscape_grid", grid_rows)
    write_rows(directory, "landscape_line", line_rows)
    write_rows(directory, "landscape", summary, {"config": vars(config), "conclusion": lines,
                                                 "alphas": alphas, "line": line})
    return {"rows": summary, "grid": grid_rows, "line": line_rows, "conclusion": lines,
            "figures": plot(surfaces, curves, alphas, line, directory)}


def conclusion(summary, classes):
    """Per model, how far the loss rises and how non-convex the surface is; then Li et al.'s two findings
    against this run: at each depth the residual net's surface is the more convex one, and plain nets' turn
    more non-convex with depth."""
    chance = math.log(classes)  # the loss of a net that has learnt nothing: uniform over the classes
    lines = []
    for r in summary:
        minima = r["line_local_minima"]
        untrained = (f"; it has not trained (loss near chance, ln {classes} = {chance:.2f}): this is the plateau of "
                     f"an untrained net, not a minimum" if r["centre_loss"] > 0.9 * chance else "")
        lines.append(f"{title(r['model'])}: the loss rises from {r['centre_loss']:.3g} at the weights to "
                     f"{r['edge_median_loss']:.3g} (median on the edge of the grid); non-convex at "
                     f"{100 * r['non_convex_fraction']:.1f}% of it; the 1-D curve has {minima} local "
                     f"minim{'um' if minima == 1 else 'a'}{untrained}")
    share = {r["model"]: r["non_convex_fraction"] for r in summary}
    depths = sorted({depth_of(n) for n in share})
    pairs = [d for d in depths if f"plain{d}" in share and f"resnet{d}" in share]
    if pairs:
        worse = [d for d in pairs if share[f"resnet{d}"] >= share[f"plain{d}"]]
        compared = ", ".join(f"{d} layers {100 * share[f'plain{d}']:.1f}% vs {100 * share[f'resnet{d}']:.1f}%"
                             for d in pairs)
        lines.append(f"Li et al. 2018: at the same depth the residual net's surface is the more convex one; "
                     f"non-convex share plain vs residual: {compared}: this run "
                     + ("shows it" if not worse else f"does not show it at {', '.join(map(str, worse))} layers"))
    plain = [d for d in depths if f"plain{d}" in share]
    if len(plain) >= 2:
        shallow, deep = f"plain{plain[0]}", f"plain{plain[-1]}"
        shown = "shows" if share[deep] > share[shallow] else "does not show"
        lines.append(f"Li et al. 2018: plain nets' surfaces turn non-convex with depth; {title(shallow)} "
                     f"{100 * share[shallow]:.1f}% -> {title(deep)} {100 * share[deep]:.1f}%: this run {shown} it")
    return lines


def _levels(surfaces):
    """Contour levels shared by every panel: log-spaced from the lowest loss to the highest finite one."""
    values = np.concatenate([s[np.isfinite(s)].ravel() for s in surfaces.values()])
    low, high = max(float(values.min()), 1e-4), float(values.max())
    return np.geomspace(low, max(high, low * 1.01), 18)


def plot(surfaces, curves, alphas, line, directory):
    plt = pyplot()
    if plt is None:
        return []
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm

    names = list(surfaces)
    levels = _levels(surfaces)
    norm = LogNorm(levels[0], levels[-1])
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4.3), squeeze=False)
    for panel, name in zip(axes[0], names):
        z = np.ma.masked_invalid(surfaces[name])
        panel.contour(alphas, alphas, z.T, levels=levels, norm=norm, cmap="viridis", linewidths=0.9)
        panel.plot([0], [0], "k+", markersize=9)
        panel.set(title=title(name), xlabel="a (direction 1)", aspect="equal")
    axes[0][0].set_ylabel("b (direction 2)")
    figure.colorbar(ScalarMappable(norm, "viridis"), ax=axes[0].tolist(), shrink=0.85,
                    label=f"training loss ({len(levels)} shared log-spaced levels)")
    figure.suptitle("Loss surfaces around the trained weights, filter-normalised directions (Li et al. 2018)")
    paths = [_save(figure, directory, "landscape_contours", plt, tight=False)]

    deep = [n for n in names if depth_of(n) == depth_of(names[-1])]
    figure = plt.figure(figsize=(5.5 * len(deep), 4.8))
    a, b = np.meshgrid(alphas, alphas, indexing="ij")
    top = math.log10(levels[-1])
    for i, name in enumerate(deep):
        panel = figure.add_subplot(1, len(deep), i + 1, projection="3d")
        z = np.log10(np.where(np.isfinite(surfaces[name]), surfaces[name], levels[-1]))
        panel.plot_surface(a, b, z, cmap="viridis", vmin=math.log10(levels[0]), vmax=top, linewidth=0,
                           antialiased=True)
        panel.set(title=title(name), xlabel="a", ylabel="b", zlabel="log10 loss", zlim=(math.log10(levels[0]), top))
    figure.suptitle("The same surfaces in 3-D, on a shared log scale")
    paths.append(_save(figure, directory, "landscape_3d", plt))

    figure, panel = plt.subplots(figsize=(6.5, 4.5))
    for name in names:
        panel.plot(line, curves[name], "--" if name.startswith("plain") else "-",
                   linewidth=2 if name == names[-1] or name == names[-2] else 1.2, label=title(name))
    panel.set(xlabel="a (steps along direction 1)", ylabel="training loss", yscale="log",
              title="1-D loss curves through the trained weights")
    panel.grid(alpha=0.3)
    panel.legend()
    paths.append(_save(figure, directory, "landscape_1d", plt))
    return paths


def _save(figure, directory, name, plt, tight=True):
    if tight:
        path = save_figure(figure, directory, name)
    else:  # a shared colour bar: tight_layout cannot place it
        path = os.path.join(directory, f"{name}.png")
        figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
