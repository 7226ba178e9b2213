"""The surface a PyTorch program touches (issue 29): the module tree, Size/device/dtypes, Tensor methods
with torch's semantics (positional dims, (values, indices) results), the new differentiable ops against torch
in float64 under a random upstream gradient and against finite differences, F.pad's modes, Lazy modules,
BatchNorm's cumulative average, autograd.grad, utils.data, and the error for a missing torch name."""
import copy
import importlib

import numpy as np
import pytest

import minires as mr

torch = pytest.importorskip("torch")


def same_as_torch(ours_fn, theirs_fn, *arrays, seed=0, tolerance=1e-12):
    """Forward values and every input's gradient (random upstream) equal torch's, in float64."""
    ours_in = [mr.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours, theirs = ours_fn(*ours_in), theirs_fn(*theirs_in)
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=tolerance, atol=tolerance)
    upstream = np.random.default_rng(seed).standard_normal(tuple(ours.shape))
    ours.backward(upstream)
    theirs.backward(torch.from_numpy(upstream))
    for a, b in zip(ours_in, theirs_in):
        expected = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        got = np.zeros(a.shape) if a.grad is None else a.grad.numpy()
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
    report = mr.gradcheck(ours_fn, [np.asarray(a, np.float64) for a in arrays], seed=seed)
    assert report.ok if hasattr(report, "ok") else report


def distinct(shape, seed=0):
    """Values far apart (no ties), for sort/topk/max, whose gradient is undefined at a tie."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64) * 0.37 - 3.0


@pytest.mark.parametrize("module", ["minires.autograd", "minires.cuda", "minires.utils.data",
                                    "minires.backends.cudnn", "minires.nn.functional", "minires.nn.init",
                                    "minires.optim.lr_scheduler"])
def test_the_module_tree_a_pytorch_program_imports(module):
    importlib.import_module(module)


def test_nn_functional_is_minires_functional_and_the_small_modules_answer():
    import minires.nn.functional as F
    assert F is mr.functional is mr.nn.functional
    assert mr.cuda.is_available() in (True, False) and mr.cuda.device_count() >= 0
    mr.cuda.synchronize()
    mr.backends.cudnn.benchmark = True
    assert mr.backends.cudnn.benchmark is True
    assert mr.device("cuda:0").type == "cuda" and str(mr.device("cpu")) == "cpu" and mr.device("cpu") == "cpu"
    assert mr.zeros(2).device == mr.device("cpu") and mr.zeros(2).device.type == "cpu"
    assert mr.float32 == np.float32 and mr.long == np.int64 and mr.float == np.float32 and mr.double == np.float64


def test_size_is_a_tuple_that_prints_like_torch():
    x = mr.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) == x.shape and isinstance(x.size(), mr.Size) and x.size(1) == 3 and x.size(-1) == 4
    assert x.size().numel() == 24 and repr(x.size()) == "minires.Size([2, 3, 4])" and x.size()[1:] == (3, 4)
    assert isinstance(x.size()[1:], mr.Size)


def test_data_is_a_tensor_sharing_memory_without_history():
    w = mr.tensor([1.0, 2.0], requires_grad=True)
    assert isinstance(w.data, mr.Tensor) and not w.data.requires_grad and w.data.grad_fn is None
    w.data.mul_(3)  # through .data: changes w, no autograd error, no version check
    assert w.tolist() == [3.0, 6.0] and w._version == 0
    w.data = mr.tensor([5.0, 5.0])
    assert w.tolist() == [5.0, 5.0] and w.requires_grad
    (w * w).sum().backward()
    assert w.grad.tolist() == [10.0, 10.0] and isinstance(w.grad.data, mr.Tensor)
    assert isinstance(w.array, np.ndarray) and w.numpy() is not w.array


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_return_values_and_indices_for_a_positional_or_keyword_dim(name):
    x = distinct((4, 5))
    ours, theirs = mr.tensor(x), torch.tensor(x)
    for call in (lambda t: getattr(t, name)(1), lambda t: getattr(t, name)(dim=1), lambda t: getattr(t, name)(0, True)):
        values, indices = call(ours)
        expected = call(theirs)
        np.testing.assert_array_equal(values.numpy(), expected.values.numpy())
        np.testing.assert_array_equal(indices.numpy(), expected.indices.numpy())
        assert indices.dtype == np.int64
    assert getattr(ours, name)().item() == getattr(theirs, name)().item()  # no dim: the value alone
    values, indices = getattr(mr, name)(ours, 1)
    assert values.shape == (4,)
    same_as_torch(lambda t: getattr(t, name)(1)[0], lambda t: getattr(t, name)(1)[0], x)


def test_argmax_argmin_sort_and_topk_match_torch():
    x = distinct((3, 6), seed=1)
    ours, theirs = mr.tensor(x), torch.tensor(x)
    for call in (lambda t: t.argmax(), lambda t: t.argmax(1), lambda t: t.argmin(dim=0, keepdim=True),
                 lambda t: t.sort()[1], lambda t: t.sort(0, descending=True)[1], lambda t: t.topk(2)[1],
                 lambda t: t.topk(3, 0, largest=False)[1]):
        np.testing.assert_array_equal(call(ours).numpy(), call(theirs).numpy())
    same_as_torch(lambda t: t.sort(dim=1, descending=True)[0], lambda t: t.sort(dim=1, descending=True)[0], x)
    same_as_torch(lambda t: t.topk(4, dim=1)[0], lambda t: t.topk(4, dim=1)[0], x)
    same_as_torch(lambda t: t.topk(2, dim=0, largest=False).values,
                  lambda t: t.topk(2, dim=0, largest=False).values, x)


def test_sort_keeps_ties_in_order():
    x = mr.tensor([2.0, 1.0, 2.0, 1.0])
    assert x.sort().indices.tolist() == [1, 3, 0, 2]
    assert x.sort(descending=True).indices.tolist() == [0, 2, 1, 3]


@pytest.mark.parametrize("ours_fn, theirs_fn, shapes", [
    (lambda t: t.expand(3, 2, 4), lambda t: t.expand(3, 2, 4), [(2, 1)]),
    (lambda t: t.expand(-1, 5), lambda t: t.expand(-1, 5), [(3, 1)]),
    (lambda t, u: t.expand_as(u) * u, lambda t, u: t.expand_as(u) * u, [(1, 4), (3, 4)]),
    (lambda t: t.repeat(2, 3), lambda t: t.repeat(2, 3), [(2, 3)]),
    (lambda t: t.repeat(2, 1, 2), lambda t: t.repeat(2, 1, 2), [(3, 2)]),
    (lambda t: t.unsqueeze(1).squeeze(), lambda t: t.unsqueeze(1).squeeze(), [(3, 1, 2)]),
    (lambda t: t.squeeze(1), lambda t: t.squeeze(1), [(3, 1, 2)]),
    (lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1), [(2, 3, 4)]),
    (lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2), [(2, 3, 4)]),
    (lambda t: t.t(), lambda t: t.t(), [(2, 3)]),
    (lambda t: t.clone() * 2, lambda t: t.clone() * 2, [(2, 3)]),
    (lambda t: t.abs(), lambda t: t.abs(), [(3, 4)]),
    (lambda t: t.clamp(-0.5, 0.7), lambda t: t.clamp(-0.5, 0.7), [(3, 4)]),
    (lambda t: t.clamp(min=0.1), lambda t: t.clamp(min=0.1), [(3, 4)]),
    (lambda t, u: mr.stack([t, u], 1), lambda t, u: torch.stack([t, u], 1), [(2, 3), (2, 3)]),
    (lambda t: t.view_as(t.t()), lambda t: t.view_as(t.t()), [(2, 3)]),
])
def test_shape_and_pointwise_ops_match_torch_and_finite_differences(ours_fn, theirs_fn, shapes):
    rng = np.random.default_rng(len(shapes))
    arrays = [distinct(s, seed=i) * 0.3 + rng.uniform(-0.01, 0.01) for i, s in enumerate(shapes)]
    same_as_torch(ours_fn, theirs_fn, *arrays)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", [((2, 3, 5), (1, 2)), ((2, 3, 4, 5), (2, 1, 1, 0)),
                                        ((2, 3, 4, 5), (1, 1, 3, 2)), ((1, 2, 4, 5), (0, 4, 1, 1))])
def test_pad_modes_match_torch(mode, shape, pad):
    x = distinct(shape, seed=3)
    same_as_torch(lambda t: mr.F.pad(t, pad, mode), lambda t: torch.nn.functional.pad(t, pad, mode), x)


def test_pad_constant_value_and_negative_sizes_crop_as_torch():
    x = distinct((2, 3, 4, 5), seed=4)
    same_as_torch(lambda t: mr.F.pad(t, (1, 1), "constant", 2.5), lambda t: torch.nn.functional.pad(t, (1, 1), "constant", 2.5), x)
    same_as_torch(lambda t: mr.F.pad(t, (-1, 2, 0, -2)), lambda t: torch.nn.functional.pad(t, (-1, 2, 0, -2)), x)
    same_as_torch(lambda t: mr.F.pad(t[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2), "constant", 0),
                  lambda t: torch.nn.functional.pad(t[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2), "constant", 0), x)
    with pytest.raises(ValueError, match="reflect padding"):
        mr.F.pad(mr.tensor(x), (5, 5), "reflect")
    with pytest.raises(ValueError, match="unknown mode"):
        mr.F.pad(mr.tensor(x), (1, 1), "mirror")


def test_comparisons_and_conversions_as_a_training_script_uses_them():
    x, y = mr.tensor([1.0, 2.0, 3.0]), mr.tensor([1, 5, 3])
    assert x.long().eq(y).tolist() == [True, False, True] and x.long().ne(y).sum().item() == 1
    assert x.to(mr.long).dtype == np.int64 and x.type_as(y).dtype == np.int64 and y.float().dtype == np.float32
    assert x.to("cpu", mr.float64).dtype == np.float64 and x.to(y).dtype == np.int64
    assert x.cpu() is x and x.item() if x.numel() == 1 else True
    assert mr.from_numpy(np.arange(3)).tolist() == [0, 1, 2] and mr.is_tensor(x) and not mr.is_tensor(3)
    w = mr.tensor([1.0, -2.0], requires_grad=True)
    assert not w.long().requires_grad and w.long().tolist() == [1, -2]  # integers leave the graph, as torch


def test_deepcopy_of_a_state_dict_is_a_snapshot_and_a_non_leaf_refuses():
    model = mr.nn.Linear(2, 2)
    snapshot = copy.deepcopy(model.state_dict())
    live = model.state_dict()
    with mr.no_grad():
        model.weight.mul_(0)
    assert (live["weight"].numpy() == 0).all() and not (snapshot["weight"].numpy() == 0).all()
    with pytest.raises(RuntimeError, match="leaf"):
        copy.deepcopy(model.weight * 2)
    assert copy.deepcopy(model).weight is not model.weight


def test_state_dict_holds_tensors_sharing_memory_and_keep_vars_gives_parameters():
    model = mr.nn.Sequential(mr.nn.Conv2d(1, 2, 3), mr.nn.BatchNorm2d(2))
    state = model.state_dict()
    assert all(isinstance(v, mr.Tensor) and not v.requires_grad for v in state.values())
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                           "1.num_batches_tracked"]
    assert isinstance(model.state_dict(keep_vars=True)["0.weight"], mr.nn.Parameter)
    assert list(model.state_dict(prefix="net."))[0] == "net.0.weight"


def test_batch_norm_momentum_none_is_the_cumulative_average_as_torch():
    rng = np.random.default_rng(5)
    ours, theirs = mr.nn.BatchNorm2d(3, momentum=None).double(), torch.nn.BatchNorm2d(3, momentum=None).double()
    for _ in range(4):
        x = rng.standard_normal((4, 3, 2, 2)) * 2 + 1
        ours(mr.tensor(x)), theirs(torch.tensor(x))
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name).numpy(), rtol=1e-12)
    assert ours.num_batches_tracked.item() == 4
    with pytest.raises(ValueError, match="momentum"):
        mr.nn.BatchNorm2d(3, momentum=1.5)


def test_batch_norm_without_running_statistics_uses_batch_statistics_in_eval_too():
    x = np.random.default_rng(6).standard_normal((4, 3, 2, 2))
    ours, theirs = mr.nn.BatchNorm2d(3, track_running_stats=False).double().eval(), \
        torch.nn.BatchNorm2d(3, track_running_stats=False).double().eval()
    np.testing.assert_allclose(ours(mr.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-12)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_lazy_modules_infer_their_input_size_and_become_ordinary_layers():
    net = mr.nn.Sequential(mr.nn.LazyConv2d(4, 3, padding=1), mr.nn.LazyBatchNorm2d(), mr.nn.ReLU(),
                           mr.nn.Flatten(), mr.nn.LazyLinear(5)).double()
    assert list(net.parameters()) == []
    out = net(mr.tensor(np.zeros((2, 3, 4, 4))))
    assert out.shape == (2, 5) and out.dtype == np.float64
    assert type(net[0]) is mr.nn.Conv2d and net[0].weight.shape == (4, 3, 3, 3)
    assert type(net[1]) is mr.nn.BatchNorm2d and net[1].running_mean.shape == (4,)
    assert type(net[4]) is mr.nn.Linear and net[4].weight.shape == (5, 64)
    assert sum(p.numel() for p in net.parameters()) == 4 * 27 + 4 + 8 + 5 * 64 + 5


def test_autograd_grad_returns_gradients_and_leaves_grad_alone():
    x = mr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = mr.tensor([0.5, -1.0, 2.0], requires_grad=True)
    hidden = x * w
    (gx, gh) = mr.autograd.grad((hidden * hidden).sum(), [x, hidden])
    np.testing.assert_allclose(gx.numpy(), 2 * (x.numpy() * w.numpy()) * w.numpy())
    np.testing.assert_allclose(gh.numpy(), 2 * hidden.numpy())
    assert x.grad is None and w.grad is None
    with pytest.raises(RuntimeError, match="allow_unused"):
        mr.autograd.grad((x * 2).sum(), [x, w])
    assert mr.autograd.grad((x * 2).sum(), [x, w], allow_unused=True)[1] is None
    v = mr.autograd.Variable(mr.tensor([1.0]), requires_grad=True)
    assert isinstance(v, mr.Tensor) and v.requires_grad


def test_autograd_backward_sums_several_roots():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    mr.autograd.backward([(x * 3).sum(), (x * x).sum()])
    assert x.grad.tolist() == [5.0, 7.0]


def test_set_grad_enabled_is_a_call_and_a_context_manager():
    x = mr.tensor([1.0], requires_grad=True)
    with mr.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    mr.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        mr.set_grad_enabled(True)


def test_utils_data_collates_as_torch_and_splits_reproducibly():
    from minires.utils.data import DataLoader, Dataset, TensorDataset, random_split

    class Pairs(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full(2, i, np.float32), i, {"w": float(i)}

    batches = list(DataLoader(Pairs(), batch_size=2))
    assert len(batches) == 3 and isinstance(batches[0], list)
    assert batches[0][0].shape == (2, 2) and batches[0][1].dtype == np.int64 and batches[0][2]["w"].dtype == np.float64
    assert len(DataLoader(Pairs(), batch_size=2, drop_last=True)) == 2
    x, y = mr.arange(10).float(), mr.arange(10)
    xs, ys = next(iter(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, generator=np.random.default_rng(0))))
    assert (xs.long() == ys).all() and len(xs) == 4
    a, b = random_split(TensorDataset(x, y), [0.7, 0.3], generator=np.random.default_rng(1))
    assert len(a) == 7 and len(b) == 3 and sorted(a.indices + b.indices) == list(range(10))


@pytest.mark.parametrize("where, name, label", [
    (lambda: mr, "fft", "torch.fft"), (lambda: mr.nn, "Transformer", "torch.nn.Transformer"),
    (lambda: mr.nn.functional, "gelu", "torch.nn.functional.gelu"), (lambda: mr.optim, "LBFGS", "torch.optim.LBFGS"),
    (lambda: mr.zeros(2), "cumsum", "torch.Tensor.cumsum"), (lambda: mr.nn.Linear(1, 1), "half", "torch.nn.Module.half"),
])
def test_a_torch_name_minires_lacks_says_so(where, name, label):
    with pytest.raises(AttributeError, match=f"minires does not implement {label} yet"):
        getattr(where(), name)


def test_a_users_own_missing_attribute_keeps_pythons_message():
    with pytest.raises(AttributeError, match="has no attribute 'my_layer'"):
        mr.nn.Linear(1, 1).my_layer


def test_unsupported_torch_arguments_are_named():
    x = mr.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="does not implement ceil_mode=True"):
        mr.F.max_pool2d(x, 2, ceil_mode=True)
    with pytest.raises(ValueError, match="does not implement weight="):
        mr.nn.CrossEntropyLoss(weight=mr.ones(3))
    with pytest.raises(RuntimeError, match="create_graph"):
        mr.autograd.grad((mr.ones(1, requires_grad=True) * 2).sum(), [mr.ones(1, requires_grad=True)],
                         create_graph=True)
