"""The learning-rate schedules as PyTorch programs use them: the same constructor calls (defaults included)
under torch and under minires, two parameter groups with their own rates, a sequence of epochs compared
rate by rate and epoch by epoch; their refusals of impossible arguments, at the edges of what each accepts;
resuming."""
import json
import re
import warnings

import numpy as np
import pytest
import torch

import minires as mr
from minires import optim
from minires.errors import ArgumentError
from minires.optim import lr_scheduler as ours_sched

theirs_sched = torch.optim.lr_scheduler


def _groups(library, rates):
    """An optimiser of ``library`` (minires or torch) with one parameter group per rate."""
    if library is torch:
        return torch.optim.SGD([{"params": [torch.ones(1, requires_grad=True)], "lr": r} for r in rates], lr=rates[0])
    return optim.SGD([{"params": [mr.tensor(np.ones(1), requires_grad=True)], "lr": r} for r in rates], lr=rates[0])


def _rates(make, library, epochs, rates=(0.1, 0.03)):
    optimizer = _groups(library, rates)
    schedule = make(library, optimizer)
    seen = []
    for _ in range(epochs):
        seen.append([schedule.last_epoch, *schedule.get_last_lr()])
        assert seen[-1][1:] == [group["lr"] for group in optimizer.param_groups]
        optimizer.step()
        schedule.step()
    return seen


def _module(library):
    return theirs_sched if library is torch else ours_sched


SCHEDULES = {  # the same call under both libraries
    "multistep defaults": lambda lib, o: _module(lib).MultiStepLR(o, milestones=[4, 2, 7]),
    "multistep gamma": lambda lib, o: _module(lib).MultiStepLR(o, [3, 3, 6], gamma=0.5),
    "cosine defaults": lambda lib, o: _module(lib).CosineAnnealingLR(o, T_max=9),
    "cosine eta_min": lambda lib, o: _module(lib).CosineAnnealingLR(o, 5, eta_min=0.01),
    "cosine T_max 1": lambda lib, o: _module(lib).CosineAnnealingLR(o, 1),
    "linear defaults": lambda lib, o: _module(lib).LinearLR(o),
    "linear decay": lambda lib, o: _module(lib).LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=4),
    "linear one step": lambda lib, o: _module(lib).LinearLR(o, 0.5, total_iters=1),
    "sequential three": lambda lib, o: _module(lib).SequentialLR(
        o, [_module(lib).LinearLR(o, 0.2, total_iters=3), _module(lib).MultiStepLR(o, [2], 0.3),
            _module(lib).CosineAnnealingLR(o, 4)], milestones=[3, 6]),
    "constant unit": lambda lib, o: _module(lib).ConstantLR(o, factor=1.0, total_iters=0),
    "constant defaults": lambda lib, o: _module(lib).ConstantLR(o),
    "step": lambda lib, o: _module(lib).StepLR(o, step_size=3, gamma=0.5),
    "step defaults": lambda lib, o: _module(lib).StepLR(o, 2),
    "step every epoch": lambda lib, o: _module(lib).StepLR(o, 1, 0.7),
    "exponential": lambda lib, o: _module(lib).ExponentialLR(o, gamma=0.9),
}


def _rates_with_hand_edits(make, library, epochs, edits):
    """As a classic script does: param_group["lr"] changed by hand before some epochs, the schedule stepping."""
    optimizer = _groups(library, (0.1, 0.03))
    schedule = make(library, optimizer)
    seen = []
    for epoch in range(epochs):
        if epoch in edits:
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * edits[epoch]
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    return seen


@pytest.mark.parametrize("name", SCHEDULES)
def test_a_hand_edited_lr_is_kept_as_torch_keeps_it(name):
    """torch's chainable form: each step starts from the group's current lr, so a script's own change stays."""
    edits = {2: 0.1, 5: 3.0, 9: 0.5}
    ours, theirs = (_rates_with_hand_edits(SCHEDULES[name], library, 14, edits) for library in (mr, torch))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule_gives_torch_s_rates_epoch_by_epoch_for_each_group(name):
    epochs = 14
    ours, theirs = (_rates(SCHEDULES[name], library, epochs) for library in (mr, torch))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("warmup", [1, 3])
def test_warmup_then_is_a_linear_warm_up_from_a_tenth_then_the_schedule(warmup):
    ours = _rates(lambda lib, o: ours_sched.warmup_then(o, ours_sched.CosineAnnealingLR(o, 6), warmup), mr, 10)
    theirs = _rates(lambda lib, o: theirs_sched.SequentialLR(
        o, [theirs_sched.LinearLR(o, 0.1, total_iters=warmup), theirs_sched.CosineAnnealingLR(o, 6)], [warmup]),
        torch, 10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    optimizer = _groups(mr, (0.1,))
    schedule = ours_sched.MultiStepLR(optimizer, [2])
    assert ours_sched.warmup_then(optimizer, schedule, 0) is schedule


LINEAR = "LinearLR: need 0 < start_factor <= 1, 0 <= end_factor <= 1, total_iters >= 1"


@pytest.mark.parametrize("make, message", [
    (lambda o: ours_sched.CosineAnnealingLR(o, 0), "CosineAnnealingLR: T_max must be at least 1, got 0"),
    (lambda o: ours_sched.LinearLR(o, start_factor=0.0), LINEAR),
    (lambda o: ours_sched.LinearLR(o, start_factor=1.01), LINEAR),
    (lambda o: ours_sched.LinearLR(o, end_factor=-0.01), LINEAR),
    (lambda o: ours_sched.LinearLR(o, end_factor=1.01), LINEAR),
    (lambda o: ours_sched.LinearLR(o, total_iters=0), LINEAR),
    (lambda o: ours_sched.SequentialLR(o, [ours_sched.ConstantLR(o, 1.0, 0), ours_sched.ConstantLR(o, 1.0, 0)], [1, 2]),
     "SequentialLR: 2 schedulers need 1 milestones, got 2"),
    # torch takes factor 0 and then divides by it at total_iters; minires refuses it at once
    (lambda o: ours_sched.ConstantLR(o, factor=0.0), "ConstantLR: factor must be in (0, 1], got 0.0"),
    (lambda o: ours_sched.ConstantLR(o, factor=1.01), "ConstantLR: factor must be in (0, 1], got 1.01"),
    (lambda o: ours_sched.StepLR(o, 0), "StepLR: step_size must be at least 1, got 0"),
    (lambda o: ours_sched.StepLR(o, 1, last_epoch=3),
     "StepLR: param group has no 'initial_lr' to resume from (last_epoch=3); build it with last_epoch=-1 first, "
     "as in torch"),
])
def test_impossible_arguments_are_refused_by_name(make, message):
    with pytest.raises(ArgumentError, match=f"^{re.escape(message)}$"):
        make(_groups(mr, (0.1,)))


def test_a_schedule_resumed_from_its_state_dict_continues_the_sequence():
    make = SCHEDULES["sequential three"]
    optimizer = _groups(mr, (0.1, 0.03))
    schedule = make(mr, optimizer)
    for _ in range(4):
        schedule.step()
    state = schedule.state_dict()
    assert state["last_epoch"] == 4 and state["base_lrs"] == [0.1, 0.03] and len(state["_schedulers"]) == 3
    json.dumps(state)  # a run's checkpoint keeps it in JSON
    resumed_optimizer = _groups(mr, (0.1, 0.03))
    resumed = make(mr, resumed_optimizer)
    resumed.load_state_dict(state)
    assert resumed.get_last_lr() == schedule.get_last_lr()
    for _ in range(5):
        schedule.step(), resumed.step()
        assert resumed.get_last_lr() == schedule.get_last_lr()
    assert [g["initial_lr"] for g in resumed_optimizer.param_groups] == [0.1, 0.03]


@pytest.mark.parametrize("name", ["sequential three", "cosine defaults", "multistep gamma"])
def test_a_state_saved_by_an_earlier_minires_resumes_too(name):
    """Run checkpoints written before the chainable form hold only last_epoch and base_lrs."""
    make = SCHEDULES[name]
    optimizer = _groups(mr, (0.1, 0.03))
    schedule = make(mr, optimizer)
    for _ in range(4):
        schedule.step()
    resumed = make(mr, _groups(mr, (0.1, 0.03)))
    resumed.load_state_dict({"last_epoch": 4, "base_lrs": [0.1, 0.03]})
    for _ in range(6):
        np.testing.assert_allclose(resumed.get_last_lr(), schedule.get_last_lr(), rtol=1e-12)
        schedule.step(), resumed.step()


EPOCHS_JUMPED_TO = [3, 0, 7, 2, 12, 5, 5]
SINGLE_SCHEDULES = [n for n in SCHEDULES if not n.startswith("sequential")]


def _stepped(name, library, steps):
    """SCHEDULES[name] of ``library`` on two parameter groups, after ``steps`` optimiser and schedule steps."""
    optimizer = _groups(library, (0.1, 0.03))
    schedule = SCHEDULES[name](library, optimizer)
    for _ in range(steps):
        optimizer.step()
        schedule.step()
    return optimizer, schedule


@pytest.mark.parametrize("name", SINGLE_SCHEDULES)
def test_step_with_an_epoch_jumps_to_torch_s_closed_form(name):
    """``step(epoch)`` (deprecated in torch, still in scripts) sets the closed-form rate of that epoch."""
    seen = {}
    for library in (mr, torch):
        optimizer = _groups(library, (0.1, 0.03))
        schedule = SCHEDULES[name](library, optimizer)
        seen[library] = []
        for epoch in EPOCHS_JUMPED_TO:
            optimizer.step()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's deprecation warning for the epoch argument
                schedule.step(epoch)
            seen[library].append([schedule.last_epoch, *schedule.get_last_lr()])
    np.testing.assert_allclose(seen[mr], seen[torch], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", SINGLE_SCHEDULES)
def test_a_schedule_built_with_last_epoch_resumes_and_keeps_torch_s_step_count(name):
    """As a resumed script does: the optimiser (with its initial_lr) stepped 5 times, then a new schedule
    built with last_epoch=4 on it; rates, last_epoch and the step count as torch's."""
    seen = {}
    for library in (mr, torch):
        optimizer, _ = _stepped(name, library, 5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resumed = _rebuilt(SCHEDULES[name], library, optimizer, last_epoch=4)
        seen[library] = []
        for _ in range(6):
            state = resumed.state_dict()
            seen[library].append([state["last_epoch"], state["_step_count"], *state["base_lrs"], *resumed.get_last_lr()])
            optimizer.step()
            resumed.step()
    np.testing.assert_allclose(seen[mr], seen[torch], rtol=1e-12, atol=1e-15)


def _rebuilt(make, library, optimizer, last_epoch):
    """The same constructor call as ``make`` with ``last_epoch`` added (the lambdas pass only the optimiser)."""
    module = _module(library)
    with pytest.MonkeyPatch.context() as patch:
        for cls_name in ("MultiStepLR", "CosineAnnealingLR", "LinearLR", "ConstantLR", "StepLR", "ExponentialLR"):
            cls = getattr(module, cls_name)
            patch.setattr(module, cls_name, lambda *a, _cls=cls, **k: _cls(*a, last_epoch=last_epoch, **k))
        return make(library, optimizer)


@pytest.mark.parametrize("name", SINGLE_SCHEDULES)
def test_the_state_dict_holds_what_torch_s_holds(name):
    """Same keys (torch's bookkeeping flag for get_lr warnings aside) and values after a few steps; torch keeps
    MultiStepLR's milestones as a Counter, minires as the sorted list."""
    states = {}
    for library in (mr, torch):
        states[library] = _stepped(name, library, 3)[1].state_dict()
    theirs = {k: v for k, v in states[torch].items() if k != "_get_lr_called_within_step"}
    if "milestones" in theirs:
        theirs["milestones"] = sorted(theirs["milestones"].elements())
    assert states[mr].keys() == theirs.keys()
    for key, value in theirs.items():
        assert type(states[mr][key]) is type(value) and np.allclose(states[mr][key], value, rtol=1e-12), key
