"""Optimisers (``minires.optim``) with PyTorch's update rules, and learning-rate schedules."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "parameter_groups"]


def parameter_groups(model, weight_decay):
    """Two groups: weights of convolutions and linear layers get ``weight_decay``; batch-norm parameters and
    biases (1-D parameters) get none, the usual practice for ResNets."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def __getattr__(name):
    from ..missing import missing
    raise missing("torch.optim", name)
