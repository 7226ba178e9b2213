"""Turning a TrainConfig into the objects of a run: data, model, optimiser, schedule, loaders."""
from .. import data as data_module
from .. import models, optim
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
        schedule = lr_scheduler.ConstantLR(optimizer)
    return lr_scheduler.warmup_then(optimizer, schedule, config.warmup_epochs)


def build_loaders(config, bundle):
    train = data_module.DataLoader(bundle.train, config.batch_size, shuffle=True, seed=config.seed,
                                   transform=bundle.train_transform())
    test = data_module.DataLoader(bundle.test, max(config.batch_size, 256), transform=bundle.eval_transform())
    return train, test
