"""The degradation problem (He et al. 2015, Fig. 1 and 6): a deeper plain network trains *worse* than a
shallower one — higher training error, not just test error — while the residual network of the same depth
trains at least as well as the shallow one.

Trains plain-20, plain-56, ResNet-20 and ResNet-56 (the CIFAR layouts, option A) with the same SGD settings
and the paper's schedule shape (a warm-up, then the lr divided by 10 at 50% and 75% of the iterations), and
records training and test error against iterations, then the final models' error on the whole training
split. The defaults are scaled to the bundled digits and about 1.5 minutes on 2 CPU cores (400 iterations of
32 images). Two choices make the short run show the paper's message, measured over 3 seeds (docs/tutorial.md):
the warm-up ramps the lr linearly from 0 (Goyal et al. 2017; He et al. hold 0.01 for their deepest net), and
each residual block's last batch-norm starts at zero (``zero_init_residual``, also Goyal et al.), so a deep
residual net starts as a shallow one. Without them ResNet-56 ends this short run slightly *behind* ResNet-20
(0.8-0.9% against 0.1-0.4% training error), which is a fact about 400 iterations, not about depth: the
paper's nets train for 64k. Plain nets have no residual branch to zero and train from the standard init.
The paper's setting is ``--data cifar10:PATH --iterations 64000 --batch-size 128 --lr 0.1 --warmup 0
--zero-init-residual false --eval-every 1000`` (hours on a CPU).
"""
from dataclasses import dataclass


from .. import functional as F
from .. import models
from ..optim import SGD, parameter_groups
from ..tensor import Tensor
from ..allocator import keep_freed_memory
from ..threads import one_pool
from ..data import DataLoader
from ..training import evaluate_model
from .common import training_batches
from .output import pyplot, save_figure, write_rows


@dataclass
class DegradationConfig:
    models: tuple[str, ...] = ("plain20", "plain56", "resnet20", "resnet56")
    data: str = "digits"
    iterations: int = 400
    batch_size: int = 32
    lr: float = 0.05
    warmup: int = 100  # iterations over which the lr ramps linearly from warmup_lr up to lr
    warmup_lr: float = 0.0
    decay_at: tuple[float, ...] = (0.5, 0.75)  # fractions of the iterations where the lr is divided by 10
    zero_init_residual: bool = True  # residual nets only: each block's last BN starts at 0 (Goyal et al. 2017)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    eval_every: int = 50
    seed: int = 0
    device: str = "cpu"


def build_model(name, config, bundle):
    """A fresh model for the bundle's images; residual nets get ``zero_init_residual`` when the config asks."""
    residual = config.zero_init_residual and not name.startswith("plain")  # a plain branch must not start at 0
    return models.get(name, num_classes=len(bundle.classes), in_channels=bundle.input_shape[0],
                      seed=config.seed, **({"zero_init_residual": True} if residual else {})).to(config.device)


def train_and_record(model, name, config, loader, test_loader, progress, train_eval_loader=None):
    """Train one model; rows of windowed training error and test error every ``eval_every`` iterations. The
    last row also holds ``final_train_error``: the trained model's error on the whole training split."""
    optimizer = SGD(parameter_groups(model, config.weight_decay), lr=config.lr, momentum=config.momentum)
    rows, wrong, seen, iteration, epoch = [], 0, 0, 0, 0
    while iteration < config.iterations:
        for images, labels in loader.batches(epoch):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, iteration)
            logits = model(Tensor(images, device=config.device))
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            wrong += int((logits.numpy().argmax(axis=1) != labels).sum())
            seen += len(labels)
            iteration += 1
            if iteration % config.eval_every == 0 or iteration == config.iterations:
                test_loss, test_accuracy = evaluate_model(model, test_loader, config.device)
                rows.append({"model": name, "iteration": iteration, "train_error": wrong / seen,
                             "test_error": 1 - test_accuracy, "train_loss": float(loss.item()),
                             "test_loss": test_loss})
                wrong = seen = 0
            if iteration == config.iterations:
                break
        epoch += 1
    last = rows[-1]
    if train_eval_loader is not None:
        last["final_train_error"] = 1 - evaluate_model(model, train_eval_loader, config.device)[1]
    final = last.get("final_train_error", last["train_error"])
    progress(f"{name:9s} after {config.iterations} iterations: training error {100 * final:.2f}%, "
             f"test error {100 * last['test_error']:.2f}%")
    return rows


def learning_rate(config, iteration):
    """A linear warm-up from warmup_lr to lr over the first ``warmup`` iterations, then lr divided by 10 at
    each fraction of the iterations in ``decay_at`` (He et al.'s steps)."""
    if iteration < config.warmup:
        return config.warmup_lr + (config.lr - config.warmup_lr) * iteration / config.warmup
    return config.lr * 0.1 ** sum(iteration >= fraction * config.iterations for fraction in config.decay_at)


def verdict(rows, config):
    """Did the deeper plain net end worse than the shallower one, and the deeper residual net better?"""
    last = {name: [r for r in rows if r["model"] == name][-1] for name in config.models}
    final = {name: dict(row, train_error=row.get("final_train_error", row["train_error"])) for name, row in last.items()}

    def depth(name):
        return int(name.lstrip("abcdefghijklmnopqrstuvwxyz_"))

    def compare(prefix):
        names = sorted((n for n in config.models if n.startswith(prefix)), key=depth)
        if len(names) < 2:
            return None
        shallow, deep = final[names[0]], final[names[-1]]
        return {"shallow": names[0], "deep": names[-1],
                "deep_train_error_minus_shallow": deep["train_error"] - shallow["train_error"],
                "deep_test_error_minus_shallow": deep["test_error"] - shallow["test_error"]}
    plain, residual = compare("plain"), compare("resnet")
    lines = []
    for result, kind, expected in ((plain, "plain", "worse"), (residual, "residual", "better")):
        if result is None:
            continue
        train_delta = result["deep_train_error_minus_shallow"]
        worse = train_delta > 0
        shown = "shows" if worse == (expected == "worse") else "does not show"
        lesson = ("deeper plain nets train worse (degradation)" if kind == "plain" else
                  "the deeper residual net trains at least as well (no degradation)")
        lines.append(f"{kind}: {result['deep']} ends at {100 * final[result['deep']]['train_error']:.1f}% training "
                     f"error vs {result['shallow']}'s {100 * final[result['shallow']]['train_error']:.1f}% "
                     f"({100 * train_delta:+.2f} points; test error {100 * result['deep_test_error_minus_shallow']:+.2f}"
                     f" points): {'worse' if worse else 'better or equal'}; the paper expects {expected} — "
                     f"{lesson} — and this run {shown} it")
    return {"plain": plain, "residual": residual, "summary": lines}


def run(config, directory, progress=print):
    bundle, loader, test_loader = training_batches(config.data, config.batch_size, config.seed)
    train_eval = DataLoader(bundle.train, 512, transform=bundle.eval_transform())  # the final training error
    rows = []
    with one_pool(), keep_freed_memory():
        for name in config.models:
            rows += train_and_record(build_model(name, config, bundle), name, config, loader, test_loader, progress,
                                         train_eval)
    result = verdict(rows, config)
    write_rows(directory, "degradation", rows, {"config": vars(config), "verdict": result,
                                                "conclusion": result["summary"]})
    return {"rows": rows, "verdict": result, "conclusion": result["summary"], "figures": plot(rows, directory, config)}


def plot(rows, directory, config):
    plt = pyplot()
    if plt is None:
        return []
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, quantity, title in zip(axes, ("train_error", "test_error"), ("training error", "test error")):
        for name in config.models:
            points = [r for r in rows if r["model"] == name]
            axis.plot([r["iteration"] for r in points], [100 * r[quantity] for r in points],
                      "--" if name.startswith("plain") else "-", linewidth=2 if name.endswith("56") else 1,
                      label=name)
        axis.set(xlabel="iteration", title=title, yscale="log")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("error (%)")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(config.models), frameon=False)
    figure.suptitle(f"Degradation: plain (dashed) vs residual (solid) on {config.data}")
    path = save_figure(figure, directory, "degradation", legend_below=True)
    plt.close(figure)
    return [path]
