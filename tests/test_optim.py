"""Optimisers step for step like torch.optim; schedules give torch's learning-rate sequences."""
import numpy as np
import pytest
import torch

import minires as mr
from minires import kernels, optim
from minires.optim import lr_scheduler as mr_sched
from against_torch import assert_close

SHAPES = [(4, 3), (3,), (2, 2, 3)]


def _run(make_ours, make_theirs, steps=10, seed=0):
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    ours = [mr.Tensor(a, requires_grad=True) for a in start]
    theirs = [torch.tensor(a, requires_grad=True) for a in start]
    opt, topt = make_ours(ours), make_theirs(theirs)
    for step in range(steps):
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        opt.zero_grad(), topt.zero_grad()
        for p, t, g in zip(ours, theirs, grads):
            (p * mr.tensor(g)).sum().backward()
            (t * torch.from_numpy(g)).sum().backward()
        opt.step(), topt.step()
        for i, (p, t) in enumerate(zip(ours, theirs)):
            assert_close(p.numpy(), t.detach().numpy(), f"step {step}, parameter {i}", rtol=1e-5, atol=1e-6)
    return opt


@pytest.mark.parametrize("options", [
    dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.1, momentum=0.8, weight_decay=1e-2),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4), dict(lr=0.1, weight_decay=0.1),
])
def test_sgd_matches_torch(options):
    _run(lambda ps: optim.SGD(ps, **options), lambda ps: torch.optim.SGD(ps, **options))


@pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [
    dict(momentum=0.0, keep=1.0, weight_decay=0.0, nesterov=False),
    dict(momentum=0.9, keep=0.7, weight_decay=5e-4, nesterov=False),
    dict(momentum=0.9, keep=1.0, weight_decay=1e-2, nesterov=True),
])
def test_the_sgd_kernel_flavours_agree_to_the_bit(dtype, options):
    """Each flavour updates p and the momentum buffer in place; with the scalars in the parameter's dtype
    they round every step alike, over a first and a later step."""
    rng = np.random.default_rng(0)
    p0, b0 = rng.standard_normal(1000).astype(dtype), rng.standard_normal(1000).astype(dtype)
    g = rng.standard_normal(1000).astype(dtype)
    scalars = [dtype(v) for v in (0.1, options["momentum"], options["keep"], options["weight_decay"])]
    for first in (True, False):
        results = []
        for flavour in ("reference", "numba"):
            p, buffer = p0.copy(), b0.copy()
            out = kernels.implementation("sgd_update", flavour)(p, g, buffer, *scalars, options["nesterov"], first)
            assert out[0] is p and out[1] is buffer  # in place
            results.append((p, buffer))
        np.testing.assert_array_equal(results[0][0], results[1][0])
        np.testing.assert_array_equal(results[0][1], results[1][1])
        assert not np.array_equal(results[0][0], p0)


def test_sgd_updates_a_channels_last_parameter_in_its_own_memory_order():
    """A channels-last weight, its .grad and its buffer share one memory order: the kernel walks them flat.
    A gradient laid out otherwise (set by hand) takes the reference on the arrays as they are. Both give
    torch's update."""
    rng = np.random.default_rng(1)
    start = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    for grad_layout in (mr.channels_last, mr.contiguous_format):
        ours = mr.Tensor(start.copy(), requires_grad=True).contiguous(memory_format=mr.channels_last).detach()
        ours.requires_grad_()
        theirs = torch.tensor(start, requires_grad=True)
        opt = optim.SGD([ours], lr=0.1, momentum=0.9, weight_decay=1e-3)
        topt = torch.optim.SGD([theirs], lr=0.1, momentum=0.9, weight_decay=1e-3)
        for _ in range(3):
            g = rng.standard_normal(start.shape).astype(np.float32)
            ours.grad = mr.Tensor(g).contiguous(memory_format=grad_layout)
            theirs.grad = torch.from_numpy(g)
            opt.step(), topt.step()
        assert ours.is_contiguous(memory_format=mr.channels_last)
        assert_close(ours.numpy(), theirs.detach().numpy(), "channels-last SGD", rtol=1e-6, atol=1e-7)


def test_sgd_updates_a_strided_parameter_through_the_reference_and_a_dense_one_through_the_flavour(monkeypatch):
    """kernels.sgd_update walks flat views only where the parameter, its gradient and its buffer are one
    dense memory: a strided view (every other column, its gradient strided alike, no momentum buffer) must
    be updated in place by the reference, not through a flat copy; a dense one runs the flavour in force."""
    calls = []
    versions = kernels.table.sgd_update
    spied = versions._replace(reference=lambda *a: calls.append("reference") or versions.reference(*a),
                              numba=lambda *a: calls.append("numba") or versions.numba(*a))
    monkeypatch.setattr(kernels.table, "sgd_update", spied)
    rng = np.random.default_rng(2)
    whole, whole_grad = rng.standard_normal((3, 8)).astype(np.float32), rng.standard_normal((3, 8)).astype(np.float32)
    ours = mr.Tensor(np.zeros((3, 4), np.float32), requires_grad=True)
    ours.array, ours.grad = whole.copy()[:, ::2], whole_grad.copy()[:, ::2]  # views, strided alike: not dense
    assert ours.array.strides == ours.grad.array.strides == (32, 8)
    dense = mr.Tensor(whole.copy(), requires_grad=True)
    dense.grad = mr.Tensor(whole_grad.copy())
    with kernels.using("numba" if kernels.numba_available() else "reference"):
        optim.SGD([ours], lr=0.5).step()
        assert calls == ["reference"]
        optim.SGD([dense], lr=0.5).step()
        assert calls[1] == kernels.cpu_flavour()
    np.testing.assert_array_equal(ours.numpy(), (whole - np.float32(0.5) * whole_grad)[:, ::2])
    np.testing.assert_array_equal(dense.numpy(), whole - np.float32(0.5) * whole_grad)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("options", [dict(lr=1e-2), dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
                                     dict(lr=3e-3, weight_decay=0.1)])
def test_adam_and_adamw_match_torch(name, options):
    _run(lambda ps: getattr(optim, name)(ps, **options), lambda ps: getattr(torch.optim, name)(ps, **options))


@pytest.mark.parametrize("order", ["decayed group first", "decayed group last"])
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_parameter_groups_have_their_own_hyperparameters(name, order):
    """Each group's own lr and weight decay, whatever its position (a rule applied to the first group only
    must fail the 'last' order)."""
    def groups(ps):
        special = {"params": ps[:1] if order == "decayed group first" else ps[-1:], "lr": 0.02,
                   "weight_decay": 0.1}
        rest = {"params": ps[1:] if order == "decayed group first" else ps[:-1]}
        return [special, rest] if order == "decayed group first" else [rest, special]
    options = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01)
    _run(lambda ps: getattr(optim, name)(groups(ps), **options),
         lambda ps: getattr(torch.optim, name)(groups(ps), **options))


def test_no_decay_groups_split_batch_norm_and_biases():
    model = mr.models.resnet20()
    decay, no_decay = optim.parameter_groups(model, 5e-4)
    assert all(p.ndim == 4 or p.ndim == 2 for p in decay["params"])
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_optimizer_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(1)
    params = [mr.Tensor(rng.standard_normal((3, 3)).astype(np.float32), requires_grad=True)]
    copy = [mr.Tensor(params[0].numpy(), requires_grad=True)]
    a, b = optim.Adam(params, lr=0.1), optim.Adam(copy, lr=0.1)
    for _ in range(3):
        g = rng.standard_normal((3, 3)).astype(np.float32)
        params[0].grad = g.copy()
        a.step()
    b.load_state_dict(a.state_dict())
    copy[0].array[...] = params[0].array
    g = rng.standard_normal((3, 3)).astype(np.float32)
    params[0].grad, copy[0].grad = g.copy(), g.copy()
    a.step(), b.step()
    np.testing.assert_array_equal(params[0].array, copy[0].array)


def test_bad_hyperparameters_are_refused():
    p = [mr.Tensor(np.ones(2, np.float32), requires_grad=True)]
    with pytest.raises(ValueError, match="lr must be non-negative"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="require grad"):
        optim.SGD([mr.tensor([1.0])], lr=0.1)


def _lrs(make_ours, make_theirs, epochs=40, lr=0.1):
    ours_opt = optim.SGD([mr.Tensor(np.ones(1, np.float32), requires_grad=True)], lr=lr)
    theirs_opt = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=lr)
    ours, theirs = make_ours(ours_opt), make_theirs(theirs_opt)
    a, b = [], []
    for _ in range(epochs):
        a.append(ours.get_last_lr()[0])
        b.append(theirs.get_last_lr()[0])
        ours_opt.step(), theirs_opt.step()
        ours.step(), theirs.step()
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    return ours


def test_multistep_matches_torch():
    _lrs(lambda o: mr_sched.MultiStepLR(o, [10, 25], 0.1), lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [10, 25], 0.1))


def test_cosine_matches_torch():
    _lrs(lambda o: mr_sched.CosineAnnealingLR(o, 30, eta_min=1e-3),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 30, eta_min=1e-3), epochs=30)


def test_linear_warmup_matches_torch():
    _lrs(lambda o: mr_sched.LinearLR(o, 0.1, total_iters=5), lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=5))


def test_warmup_then_cosine_matches_torch_sequential():
    def torch_sched(o):
        t = torch.optim.lr_scheduler
        return t.SequentialLR(o, [t.LinearLR(o, 0.1, total_iters=3), t.CosineAnnealingLR(o, 17)], milestones=[3])
    _lrs(lambda o: mr_sched.warmup_then(o, mr_sched.CosineAnnealingLR(o, 17), 3), torch_sched, epochs=20)


def test_scheduler_state_dict_resumes_the_sequence():
    opt = optim.SGD([mr.Tensor(np.ones(1, np.float32), requires_grad=True)], lr=0.1)
    sched = mr_sched.MultiStepLR(opt, [3], 0.5)
    for _ in range(4):
        sched.step()
    opt2 = optim.SGD([mr.Tensor(np.ones(1, np.float32), requires_grad=True)], lr=0.1)
    sched2 = mr_sched.MultiStepLR(opt2, [3], 0.5)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == sched.get_last_lr() == [0.05]
