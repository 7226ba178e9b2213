"""What a PyTorch user reaches for: each name checked against torch itself (values, and gradients under a
random upstream gradient through the suite's one comparison helper)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minires as mr
from against_torch import check_against_torch
from minires import F, nn
from minires.errors import ArgumentError, DTypeError

X = np.random.default_rng(0).standard_normal((3, 4, 5))


# --- dim= and keepdim= ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("dim, keepdim", [(1, False), ((0, 2), True), (-1, True)])
def test_reductions_take_torch_dim_and_keepdim(op, dim, keepdim):
    check_against_torch(lambda t: getattr(t, op)(dim=dim, keepdim=keepdim),
                        lambda t: getattr(t, op)(dim=dim, keepdim=keepdim), [X])
    check_against_torch(lambda t: getattr(F, op)(t, dim=dim, keepdim=keepdim),
                        lambda t: getattr(t, op)(dim=dim, keepdim=keepdim), [X])


def test_max_with_dim_returns_values_and_indices_as_torch():
    ours, theirs = mr.tensor(X).max(dim=1), torch.tensor(X).max(dim=1)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    check_against_torch(lambda t: t.max(dim=2, keepdim=True).values, lambda t: t.max(dim=2, keepdim=True).values,
                        [X])
    assert isinstance(mr.tensor(X).max(axis=1), mr.Tensor)  # NumPy's axis=: the values alone, as np.max


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_takes_dim(fn):
    check_against_torch(lambda t: getattr(F, fn)(t, dim=1), lambda t: getattr(TF, fn)(t, dim=1), [X])


def test_cat_takes_dim():
    check_against_torch(lambda a, b: F.cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1), [X, X * 2])


@pytest.mark.parametrize("call", [lambda t: t.sum(axis=1, dim=1), lambda t: F.softmax(t, axis=0, dim=1),
                                  lambda t: F.cat([t, t], axis=0, dim=1)])
def test_giving_axis_and_dim_is_an_error(call):
    with pytest.raises(ArgumentError, match="not both"):
        call(mr.tensor(X))


# --- Tensor methods -----------------------------------------------------------------------------------

def test_view_size_numel_dim_mT_and_norm_as_torch():
    check_against_torch(lambda t: t.view(3, 20).mT, lambda t: t.view(3, 20).mT, [X])
    check_against_torch(lambda t: t.norm(), lambda t: t.norm(), [X])
    t, tt = mr.tensor(X), torch.tensor(X)
    assert t.size() == tuple(tt.size()) and t.size(1) == tt.size(1) and t.numel() == tt.numel() == 60
    assert t.dim() == tt.dim() == 3


def test_python_conversions_formatting_length_and_iteration():
    loss = mr.tensor([0.123456], requires_grad=True).sum()
    assert float(loss) == pytest.approx(0.123456) and f"{loss:.3f}" == "0.123"
    assert int(mr.tensor([3.7])) == 3 and bool(mr.tensor([1.0])) and not bool(mr.tensor(0.0))
    with pytest.raises(ArgumentError, match="ambiguous"):
        bool(mr.tensor([1.0, 2.0]))
    rows = list(mr.tensor(X, requires_grad=True))
    assert len(rows) == len(mr.tensor(X)) == 3 and rows[1].grad_fn is not None
    np.testing.assert_array_equal(rows[2].numpy(), X[2])


def test_comparisons_give_boolean_tensors_without_gradient():
    x = mr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for ours, theirs in [(x > 2, [False, False, True]), (x <= 2, [True, True, False]), (x == 2, [False, True, False]),
                         (x != mr.tensor([1.0, 0.0, 3.0]), [False, True, False])]:
        assert ours.dtype == np.bool_ and not ours.requires_grad
        assert ours.numpy().tolist() == theirs
    assert len({x, x}) == 1  # hashable by identity, as torch tensors are


# --- constructors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs", [
    (lambda: mr.zeros(2, 3), lambda: torch.zeros(2, 3)), (lambda: mr.ones((2, 3)), lambda: torch.ones((2, 3))),
    (lambda: mr.full((2,), 7), lambda: torch.full((2,), 7)), (lambda: mr.full((2,), 0.5), lambda: torch.full((2,), 0.5)),
    (lambda: mr.arange(5), lambda: torch.arange(5)), (lambda: mr.arange(0, 1, 0.25), lambda: torch.arange(0, 1, 0.25)),
    (lambda: mr.linspace(0, 1, 5), lambda: torch.linspace(0, 1, 5)),
    (lambda: mr.zeros_like(mr.ones(2, dtype=np.float64)), lambda: torch.zeros_like(torch.ones(2, dtype=torch.float64))),
    (lambda: mr.ones_like(mr.arange(3)), lambda: torch.ones_like(torch.arange(3))),
])
def test_constructors_give_torch_values_and_dtypes(ours, theirs):
    a, b = ours(), theirs()
    assert a.dtype == np.dtype(str(b.dtype).replace("torch.", "")) and a.shape == tuple(b.shape)
    np.testing.assert_allclose(a.numpy(), b.numpy())


def test_random_constructors_follow_the_seed_and_their_generator():
    mr.manual_seed(3)
    first = mr.randn(2, 3)
    mr.manual_seed(3)
    np.testing.assert_array_equal(first.numpy(), mr.randn(2, 3).numpy())
    np.testing.assert_array_equal(mr.rand(4, generator=1).numpy(), mr.rand(4, generator=1).numpy())
    ints = mr.randint(2, 5, (100,), generator=0)
    assert ints.dtype == np.int64 and 2 <= ints.numpy().min() and ints.numpy().max() < 5
    assert first.dtype == np.float32 and mr.randn(2, requires_grad=True).requires_grad
    with pytest.raises(ArgumentError, match="size is required"):
        mr.randint(5)


# --- Python-scalar promotion -------------------------------------------------------------------------------

@pytest.mark.parametrize("expression", [lambda t: t + 0.5, lambda t: 0.5 * t, lambda t: t + 1, lambda t: t * 2,
                                        lambda t: t ** 0.5, lambda t: 2.0 ** t])
@pytest.mark.parametrize("values", [[1, 2], [True, False], [1.5, 2.5]])
def test_a_python_scalar_promotes_a_tensor_as_torch_does(expression, values):
    ours, theirs = expression(mr.tensor(values)), expression(torch.tensor(values))
    assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))
    np.testing.assert_allclose(ours.numpy().astype(np.float64), theirs.numpy().astype(np.float64), rtol=1e-6)


def test_two_tensors_of_different_dtypes_are_never_promoted():
    with pytest.raises(DTypeError, match="never converts silently"):
        mr.tensor([1, 2]) + mr.tensor([0.5, 0.5])


# --- losses and dropout ------------------------------------------------------------------------------------

TARGET = np.array([0, 3, 1])


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.7])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_loss_with_label_smoothing_matches_torch(smoothing, reduction):
    logits = np.random.default_rng(1).standard_normal((3, 5)) * 2
    check_against_torch(lambda t: nn.CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing)(t, TARGET),
                        lambda t: torch.nn.CrossEntropyLoss(reduction=reduction, label_smoothing=smoothing)(
                            t, torch.from_numpy(TARGET)), [logits])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch_in_both_arguments(reduction):
    a, b = np.random.default_rng(2).standard_normal((2, 2, 3, 4))
    check_against_torch(lambda x, y: nn.MSELoss(reduction=reduction)(x, y), lambda x, y: TF.mse_loss(x, y, reduction=reduction),
                        [a, b])


def test_dropout_scales_survivors_is_seeded_and_is_the_identity_in_eval():
    x = mr.tensor(np.ones((200, 50), np.float32), requires_grad=True)
    layer = nn.Dropout(0.3, generator=7)
    y = layer(x)
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7, rtol=1e-6)
    assert 0.65 < kept.mean() < 0.75
    y.backward(np.ones(y.shape, np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # d(x keep)/dx = keep
    np.testing.assert_array_equal(F.dropout(x, 0.3, generator=5).numpy(), F.dropout(x, 0.3, generator=5).numpy())
    assert layer.eval()(x) is x
    assert not F.dropout(x, 1.0).numpy().any()
    with pytest.raises(ArgumentError, match="probability"):
        F.dropout(x, 1.5)


# --- .grad is a Tensor ---------------------------------------------------------------------------------------

def test_grad_is_a_tensor_without_history_whose_data_is_the_array():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert isinstance(x.grad, mr.Tensor) and not x.grad.requires_grad and x.grad.grad_fn is None
    assert isinstance(x.grad.array, np.ndarray) and x.grad.norm().item() == pytest.approx(np.sqrt(20))
    seen = []
    x.register_hook(lambda g: seen.append(type(g)))
    (x * 3).sum().backward()
    assert seen == [mr.Tensor] and x.grad.numpy().tolist() == [5.0, 7.0]  # accumulated, as torch


# --- module hooks ---------------------------------------------------------------------------------------------

def _twins():
    ours = nn.Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(0))
    theirs = torch.nn.Conv2d(3, 4, 3, padding=1)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.filterwarnings("ignore:Full backward hook is firing when gradients are computed with respect to module outputs")
@pytest.mark.parametrize("input_needs_grad", [True, False])
def test_full_backward_hooks_get_torchs_grad_input_and_grad_output(input_needs_grad):
    ours, theirs = _twins()
    got, expected = [], []
    handle = ours.register_full_backward_hook(lambda m, gi, go: got.append((gi, go)))
    theirs.register_full_backward_hook(lambda m, gi, go: expected.append((gi, go)))
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32)
    up = np.random.default_rng(2).standard_normal((2, 4, 5, 5)).astype(np.float32)
    ours(mr.tensor(x, requires_grad=input_needs_grad)).backward(up)
    theirs(torch.tensor(x, requires_grad=input_needs_grad)).backward(torch.from_numpy(up))
    (gi, go), (tgi, tgo) = got[0], expected[0]
    assert len(gi) == len(tgi) == 1 and len(go) == len(tgo) == 1
    np.testing.assert_allclose(go[0].numpy(), tgo[0].numpy(), rtol=1e-5, atol=1e-6)
    if input_needs_grad:
        np.testing.assert_allclose(gi[0].numpy(), tgi[0].numpy(), rtol=1e-4, atol=1e-5)
    else:
        assert gi[0] is None and tgi[0] is None
    handle.remove()
    ours(mr.tensor(x, requires_grad=True)).backward(up)
    assert len(got) == 1


def test_a_full_backward_hook_can_replace_grad_input():
    layer = nn.ReLU()
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0 + 5,))
    x = mr.tensor([1.0, -1.0], requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.numpy().tolist() == [5.0, 5.0]


def test_forward_pre_hooks_see_and_may_replace_the_inputs():
    layer = nn.ReLU()
    seen = []
    handle = layer.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    layer.register_forward_pre_hook(lambda m, args: (args[0] * -1,))
    assert layer(mr.tensor([1.0, -2.0])).numpy().tolist() == [0.0, 2.0] and seen == [(2,)]
    handle.remove()
    layer(mr.tensor([1.0]))
    assert seen == [(2,)]


# --- reprs ------------------------------------------------------------------------------------------------------

def test_graph_nodes_print_as_torch_and_lead_to_their_inputs():
    x = mr.tensor([1.0, -2.0], requires_grad=True)
    y = F.residual_add(x * 2, x, relu=True)
    assert repr(y.grad_fn) == "<ResidualAddBackward>" and "grad_fn=<ResidualAddBackward>" in repr(y)
    (mul, _), (leaf, _) = y.grad_fn.next_functions
    assert repr(mul) == "<MulBackward>" and repr(leaf) == "<AccumulateGrad>" and leaf.variable is x


def test_blocks_and_optimisers_print_as_torch_does():
    text = repr(nn.BasicBlock(4, 8, stride=2, shortcut="B"))
    assert "(relu): ReLU()" in text and "(join): ResidualJoin(relu=True)" in text
    sgd = mr.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    assert repr(sgd).splitlines()[:3] == ["SGD (", "Parameter Group 0", "    dampening: 0.0"]
    assert "    momentum: 0.9" in repr(sgd)
