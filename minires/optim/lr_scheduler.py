"""Learning-rate schedules with PyTorch's semantics, step by step.

A scheduler is built on an optimiser (remembering each group's lr as ``initial_lr``) and ``step()`` is
called once per epoch (or per iteration). As in torch, each step computes the new lr *from the group's
current lr* (the "chainable" form), so a script that changes ``param_group["lr"]`` itself between steps keeps
its change, and schedules can be stacked. Each also has its closed form ``lr_at(epoch, base_lr)``, used by
``step(epoch)``, ``load_state_dict`` and SequentialLR's restarts, and for reading:

    ConstantLR         base * factor until total_iters, then base
    StepLR             base * gamma ** (t // step_size)
    ExponentialLR      base * gamma ** t
    MultiStepLR        base * gamma ** (number of milestones <= t)
    CosineAnnealingLR  eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2
    LinearLR           base * (start + (end - start) min(t, total_iters) / total_iters)   (warm-up)
    SequentialLR       one schedule after another, each restarted at its milestone
"""
import bisect
import math

from ..errors import ArgumentError


class LRScheduler:
    """Base of the schedules: each defines ``get_lr()`` (the next lr of every group from its current one)
    and ``lr_at(epoch, base_lr)`` (the closed form)."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ArgumentError(f"{type(self).__name__}: param group has no 'initial_lr' to resume from "
                                    f"(last_epoch={last_epoch}); build it with last_epoch=-1 first, as in torch")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """The constructor's step. As torch's "initial mode", the schedules that multiply the current lr
        (ExponentialLR, LinearLR, CosineAnnealingLR) keep it here: a schedule built with last_epoch=k on a
        resumed optimiser does not decay it once more."""
        self._step_count, self._is_initial = 0, True
        try:
            self.step()
        finally:
            self._is_initial = False

    def step(self, epoch=None):
        """Advance one epoch (or jump to ``epoch``, computed in closed form) and set every group's lr."""
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = int(epoch)
            values = [self.lr_at(self.last_epoch, base) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The lr of each group as the last step set it."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimiser, as torch (JSON-friendly: numbers and lists)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state):
        self.__dict__.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in state.items()})
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base)
        self._last_lr = self.current_lrs()


class ConstantLR(LRScheduler):
    """lr * factor for the first ``total_iters`` steps, then lr (factor=1: the lr as given, every epoch)."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if not 0 < factor <= 1:
            raise ArgumentError(f"ConstantLR: factor must be in (0, 1], got {factor}")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = self.current_lrs()
        if self.last_epoch == 0:
            return [lr * self.factor for lr in lrs]
        if self.last_epoch != self.total_iters:
            return lrs
        return [lr / self.factor for lr in lrs]

    def lr_at(self, epoch, base_lr):
        return base_lr * (self.factor if epoch < self.total_iters else 1.0)


class MultiStepLR(LRScheduler):
    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        times = self.milestones.count(self.last_epoch)  # a milestone listed twice decays twice, as in torch
        return [lr * self.gamma ** times if times else lr for lr in self.current_lrs()]

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class StepLR(LRScheduler):
    """lr * gamma every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if step_size < 1:
            raise ArgumentError(f"StepLR: step_size must be at least 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        decays = self.last_epoch != 0 and self.last_epoch % self.step_size == 0
        return [lr * self.gamma if decays else lr for lr in self.current_lrs()]

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """lr * gamma every epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [lr if self._is_initial else lr * self.gamma for lr in self.current_lrs()]

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if T_max < 1:
            raise ArgumentError(f"CosineAnnealingLR: T_max must be at least 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """torch's recursive form: the ratio of this epoch's cosine factor to the last one's, applied to the
        current lr (so an lr the script set itself is carried on)."""
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        lrs = self.current_lrs()
        if self._is_initial:
            return lrs
        if (t - 1 - T) % (2 * T) == 0:
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2 for lr, base in zip(lrs, self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - low) + low for lr in lrs]

    def lr_at(self, epoch, base_lr):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1 or total_iters < 1:
            raise ArgumentError("LinearLR: need 0 < start_factor <= 1, 0 <= end_factor <= 1, total_iters >= 1")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs, t = self.current_lrs(), self.last_epoch
        if t == 0:
            return [lr * self.start_factor for lr in lrs]
        if self._is_initial or t > self.total_iters:
            return lrs
        change = self.end_factor - self.start_factor
        return [lr * (1 + change / (self.total_iters * self.start_factor + (t - 1) * change)) for lr in lrs]

    def lr_at(self, epoch, base_lr):
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class SequentialLR(LRScheduler):
    """``schedulers[i]`` runs from ``milestones[i-1]`` (restarted at its epoch 0) until ``milestones[i]``."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(milestones) != len(schedulers) - 1:
            raise ArgumentError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                                f"got {len(milestones)}")
        self.optimizer, self._schedulers, self.milestones = optimizer, list(schedulers), list(milestones)
        self.last_epoch, self._step_count, self._is_initial = last_epoch + 1, 1, False
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        for group in optimizer.param_groups:  # as torch: undo the parts' own first steps, then run the first's
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:
            scheduler.last_epoch -= 1
        self._schedulers[0]._initial_step()
        self._last_lr = self._schedulers[0].get_last_lr()

    def step(self, epoch=None):
        self.last_epoch += 1
        self._step_count += 1
        i = bisect.bisect_right(self.milestones, self.last_epoch)
        if i > 0 and self.milestones[i - 1] == self.last_epoch:
            self._schedulers[i].step(0)  # restart the next schedule at its epoch 0 (closed form)
        else:
            self._schedulers[i].step()
        self._last_lr = self._schedulers[i].get_last_lr()

    def lr_at(self, epoch, base_lr):
        i = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[i - 1] if i else 0
        return self._schedulers[i].lr_at(epoch - start, base_lr)

    def state_dict(self):
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state):
        state = dict(state)
        parts = state.pop("_schedulers", None)
        self.__dict__.update(state)
        if parts is not None:
            for scheduler, part in zip(self._schedulers, parts):
                scheduler.__dict__.update(part)
        else:  # a checkpoint from before the parts were saved: put each part where its closed form is
            for i, scheduler in enumerate(self._schedulers):
                start = self.milestones[i - 1] if i else 0
                scheduler.last_epoch, scheduler._step_count = self.last_epoch - start, 2
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base)
        self._last_lr = self.current_lrs()


def warmup_then(optimizer, schedule, warmup_epochs, start_factor=0.1):
    """``schedule`` preceded by a linear warm-up from start_factor * lr over ``warmup_epochs`` epochs."""
    if warmup_epochs <= 0:
        return schedule
    warmup = LinearLR(optimizer, start_factor=start_factor, total_iters=warmup_epochs)
    return SequentialLR(optimizer, [warmup, schedule], milestones=[warmup_epochs])
