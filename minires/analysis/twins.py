"""What the landscape, sharpness and joins experiments share: each residual network and its plain twin (the
CIFAR layouts of He et al.: the same depth and widths, the residual one with option-A shortcuts), a short
training run for them (degradation's recipe: SGD with momentum, a linear warm-up, the lr divided by 10 at 50%
and 75% of the iterations), and a fixed subset of training images to measure the loss on.
"""
from dataclasses import dataclass, replace

from .. import models
from ..data import DataLoader
from ..errors import ArgumentError
from ..threads import one_pool
from ..allocator import keep_freed_memory
from .common import training_batches
from .degradation import build_model, train_and_record


@dataclass
class ShortTraining:
    depths: tuple[int, ...] = (20, 56)  # 6n + 2 layers; each depth gives plainD and resnetD
    data: str = "digits"
    iterations: int = 300
    batch_size: int = 32
    lr: float = 0.1
    warmup: int = 30  # iterations over which the lr ramps linearly from warmup_lr up to lr
    warmup_lr: float = 0.0
    decay_at: tuple[float, ...] = (0.5, 0.75)  # fractions of the iterations where the lr is divided by 10
    zero_init_residual: bool = True  # residual nets only: each block's last BN starts at 0 (Goyal et al. 2017)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    samples: int = 128  # the fixed subset of training images the loss is measured on
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        usable = sorted(set(models.CIFAR_PLAIN) & set(models.CIFAR_RESNETS))
        unknown = [d for d in self.depths if d not in usable]
        if unknown or not self.depths:
            raise ArgumentError(f"--depths must be among {', '.join(map(str, usable))} (the depths with both a plain "
                                f"and a residual CIFAR net), got {' '.join(map(str, self.depths)) or 'none'}")
        if self.samples < 1 or self.iterations < 1:
            raise ArgumentError(f"--samples and --iterations must be at least 1, got {self.samples} and "
                                f"{self.iterations}")

    @property
    def eval_every(self):  # train_and_record measures the test error once, at the end
        return self.iterations


def model_names(depths):
    """plain20, resnet20, plain56, resnet56, ... (each depth's plain twin first)."""
    return [f"{kind}{depth}" for depth in depths for kind in ("plain", "resnet")]


def depth_of(name):
    """plain20 -> 20, resnet56 -> 56: the number a model name ends with."""
    return int(name.lstrip("abcdefghijklmnopqrstuvwxyz_"))


def title(name):
    """plain20 -> 'plain-20', resnet56 -> 'ResNet-56'."""
    depth = depth_of(name)
    return f"plain-{depth}" if name.startswith("plain") else f"ResNet-{depth}"


class Twins:
    """The data and the models of one experiment: ``fresh(name)`` builds a model at initialisation,
    ``train(model, name)`` trains it briefly; ``images, labels`` are the fixed subset (no augmentation)."""

    def __init__(self, config, progress=print):
        self.config, self.progress = config, progress
        self.bundle, self.loader, self.test_loader = training_batches(config.data, config.batch_size, config.seed)
        subset = DataLoader(self.bundle.train, config.samples, shuffle=True, seed=config.seed,
                            transform=self.bundle.eval_transform())
        self.images, self.labels = next(iter(subset.batches(0)))

    def fresh(self, name):
        return build_model(name, self.config, self.bundle)

    def train(self, model, name, lr=None):
        """Train in place (at ``lr`` instead of the config's when given); the last row of training error and
        test error."""
        config = self.config if lr is None else replace(self.config, lr=lr)
        model.train()  # a measurement before may have left it in evaluation mode
        with one_pool(), keep_freed_memory():
            rows = train_and_record(model, name, config, self.loader, self.test_loader, self.progress)
        return rows[-1]
