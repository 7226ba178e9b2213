"""Learning-rate schedules with PyTorch's semantics, computed in closed form.

A scheduler is built on an optimiser (setting each group's lr for epoch 0) and ``step()`` is called once
per epoch (or per iteration, if you count in iterations): ``last_epoch`` advances and every group's lr
becomes ``lr_at(last_epoch, base_lr)``.

    MultiStepLR        base * gamma ** (number of milestones <= t)
    CosineAnnealingLR  eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2
    LinearLR           base * (start + (end - start) min(t, total_iters) / total_iters)   (warm-up)
    SequentialLR       one schedule after another, each restarted at its milestone
"""
import bisect
import math

from ..errors import ArgumentError


class LRScheduler:
    """Base of the schedules: each defines ``lr_at(epoch, base_lr)``, the closed form of its schedule."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def step(self):
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base)

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state):
        self.last_epoch, self.base_lrs = state["last_epoch"], list(state["base_lrs"])
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base)


class ConstantLR(LRScheduler):
    """The learning rate as given, every epoch (a schedule that does nothing, for uniform code)."""

    def lr_at(self, epoch, base_lr):
        return base_lr


class MultiStepLR(LRScheduler):
    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if T_max < 1:
            raise ArgumentError(f"CosineAnnealingLR: T_max must be at least 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1 or total_iters < 1:
            raise ArgumentError("LinearLR: need 0 < start_factor <= 1, 0 <= end_factor <= 1, total_iters >= 1")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch, base_lr):
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class SequentialLR(LRScheduler):
    """``schedulers[i]`` runs from ``milestones[i-1]`` (restarted at its epoch 0) until ``milestones[i]``."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(milestones) != len(schedulers) - 1:
            raise ArgumentError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                             f"got {len(milestones)}")
        self.schedulers, self.milestones = list(schedulers), list(milestones)
        super().__init__(optimizer, last_epoch)  # its step() sets every group's lr over what the parts set

    def lr_at(self, epoch, base_lr):
        i = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[i - 1] if i else 0
        return self.schedulers[i].lr_at(epoch - start, base_lr)


def warmup_then(optimizer, schedule, warmup_epochs, start_factor=0.1):
    """``schedule`` preceded by a linear warm-up from start_factor * lr over ``warmup_epochs`` epochs."""
    if warmup_epochs <= 0:
        return schedule
    warmup = LinearLR(optimizer, start_factor=start_factor, total_iters=warmup_epochs)
    return SequentialLR(optimizer, [warmup, schedule], milestones=[warmup_epochs])
