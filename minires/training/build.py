"""Turning a TrainConfig into the objects of a run: data, model, optimiser, schedule, loaders."""
from .. import data as data_module
from .. import models, optim
from ..distributed.sampler import DistributedSampler
from ..errors import ArgumentError
from ..optim import lr_scheduler


def build_data(config):
    return data_module.load(config.data, image_size=config.image_size, seed=config.seed)


def build_model(config, num_classes, in_channels):
    return models.get(config.model, num_classes=num_classes, in_channels=in_channels, seed=config.seed)


def build_optimizer(config, model):
    groups = optim.parameter_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        return optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov and config.momentum > 0)
    cls = optim.Adam if config.optimizer == "adam" else optim.AdamW
    return cls(groups, lr=config.lr)


def build_schedule(config, optimizer):
    """One scheduler step per epoch; an optional linear warm-up comes first."""
    remaining = config.epochs - config.warmup_epochs
    if config.schedule == "cosine":
        schedule = lr_scheduler.CosineAnnealingLR(optimizer, T_max=remaining)
    elif config.schedule == "multistep":
        schedule = lr_scheduler.MultiStepLR(optimizer, [max(1, round(f * remaining)) for f in config.milestones])
    else:
        schedule = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return lr_scheduler.warmup_then(optimizer, schedule, config.warmup_epochs)


def build_loaders(config, bundle, world=None):
    """The training loader (with several ranks: this rank's shard, config.batch_size / ranks images a step,
    so the global batch is config.batch_size) and the test loader (every rank evaluates the whole split)."""
    batch_size, sampler = config.batch_size, None
    if world is not None and world.size > 1:
        if config.batch_size % world.size:
            raise ArgumentError(f"--batch-size {config.batch_size} is the global batch and must divide among the "
                                f"{world.size} ranks")
        batch_size, sampler = config.batch_size // world.size, DistributedSampler(world.size, world.rank)
    train = data_module.DataLoader(bundle.train, batch_size, shuffle=True, seed=config.seed,
                                   transform=bundle.train_transform(), sampler=sampler)
    test = data_module.DataLoader(bundle.test, max(config.batch_size, 256), transform=bundle.eval_transform())
    return train, test
