"""The engine: graph order, gradient accumulation, grad modes, hooks, graph freeing, dtypes."""
import weakref

import numpy as np
import pytest
import torch

import minires as mr
from minires import F
from minires.errors import AutogradError, DTypeError, ShapeError
from against_torch import assert_close, check_against_torch


def test_5000_deep_residual_chain_backprops_without_recursion():
    depth, scale = 5000, 1e-3
    x0 = np.random.default_rng(0).standard_normal(4)
    x = mr.tensor(x0, requires_grad=True)
    h = x
    for _ in range(depth):
        h = h + scale * F.tanh(h)  # h_{k+1} = h_k + s tanh(h_k)
    h.sum().backward()
    # The same chain by hand: dh_{k+1}/dh_k = 1 + s (1 - tanh(h_k)^2), multiplied along the chain.
    value, expected = x0.copy(), np.ones(4)
    for _ in range(depth):
        expected *= 1 + scale * (1 - np.tanh(value) ** 2)
        value = value + scale * np.tanh(value)
    np.testing.assert_allclose(h.numpy(), value, rtol=1e-10)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-10)


def test_fan_out_gradients_accumulate_like_torch():
    values = np.random.default_rng(1).standard_normal((3, 4))

    def residual(x):  # x used three times: two branches of F and the shortcut
        return (x * 2 + x.tanh()) * 0.5 + x

    check_against_torch(residual, residual, [values])


def test_residual_join_gradient_is_branch_plus_identity():
    x = mr.tensor([0.3, -1.2], requires_grad=True, dtype=np.float64)
    y = F.tanh(x) + x  # y = F(x) + x
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_allclose(x.grad, (1 - np.tanh(x.numpy()) ** 2) + 1)


def test_leaf_grad_accumulates_across_backward_calls_until_cleared():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * 2 * np.array([1.0, 2.0]))
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_no_grad_builds_no_graph():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    with mr.no_grad():
        y = (x * 2).exp().sum()
        assert not mr.is_grad_enabled()
        with mr.enable_grad():
            z = x * 2
    assert mr.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_requires_grad_propagates_only_from_inputs_that_need_it():
    a = mr.tensor([1.0, 2.0])
    b = mr.tensor([3.0, 4.0], requires_grad=True)
    assert not (a * a).requires_grad
    c = a * b
    assert c.requires_grad and not c.is_leaf
    c.sum().backward()
    assert a.grad is None
    np.testing.assert_allclose(b.grad, [1.0, 2.0])


def test_detach_stops_the_gradient():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    y = x * x.detach()  # gradient flows through the first factor only
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, 2.0])
    assert x.detach().array is x.array


def test_hooks_read_and_replace_gradients():
    x = mr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    h = x * 2
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy()))
    h.register_hook(lambda g: g * 10)  # replaces the gradient flowing on to x
    handle = h.register_hook(lambda g: seen.append("removed hook ran"))
    handle.remove()
    upstream = np.array([0.5, 1.0, -1.0], np.float32)
    h.backward(upstream)
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], upstream)
    np.testing.assert_allclose(x.grad, upstream * 10 * 2)


def test_leaf_hook_sees_the_accumulated_gradient():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy()))
    (x * 3 + x).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [4.0, 4.0])


def test_a_leaf_hook_replaces_the_gradient_stored_in_grad_like_torch():
    data, upstream = np.array([1.0, -2.0, 3.0]), np.array([0.5, 1.0, -1.0])
    ours = mr.tensor(data, requires_grad=True)
    ours.register_hook(lambda g: g * 10)
    (ours * ours).backward(upstream)
    theirs = torch.tensor(data, requires_grad=True)
    theirs.register_hook(lambda g: g * 10)
    (theirs * theirs).backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy())
    np.testing.assert_allclose(ours.grad, 10 * 2 * data * upstream)


def test_retain_grad_accumulates_across_backward_calls_like_torch():
    data = np.array([1.0, 2.0])
    grads = []
    for engine, make in ((mr, lambda a: mr.tensor(a, requires_grad=True)),
                         (torch, lambda a: torch.tensor(a, requires_grad=True))):
        x = make(data)
        h = x * 3
        h.retain_grad()
        y = (h * h).sum()
        y.backward(retain_graph=True)
        y.backward()
        grads.append(np.asarray(h.grad if engine is mr else h.grad.numpy()))
    np.testing.assert_allclose(grads[0], grads[1])
    np.testing.assert_allclose(grads[0], 2 * (2 * 3 * data))  # two calls, each 2h


def test_retain_grad_keeps_an_intermediate_gradient():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    h, k = x * 3, x * 4
    h.retain_grad()
    (h * h + k).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * 3 * np.array([1.0, 2.0]))
    assert k.grad is None


def test_graph_is_freed_after_backward_unless_retained():
    x = mr.tensor(np.ones(3), requires_grad=True)
    y = x.exp()
    fn = y.grad_fn
    y.sum().backward()
    assert fn.released and not fn.__dict__.get("saved_tensors")
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()

    z = x.exp()
    total = z.sum()
    total.backward(retain_graph=True)
    total.backward()
    np.testing.assert_allclose(x.grad, np.exp(1.0) * 2 + np.exp(1.0))


def test_intermediate_arrays_are_released_after_backward():
    x = mr.tensor(np.ones((100, 100)), requires_grad=True)
    y = x.exp()
    out = y.tanh().sum()
    tanh_output = weakref.ref(out.grad_fn.inputs[0].creator.saved_tensors[0])
    del y
    out.backward()
    assert tanh_output() is None


def test_backward_needs_a_gradient_for_non_scalars():
    x = mr.tensor([[1.0, 2.0]], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="non-scalar"):
        y.backward()
    y.backward(np.array([[1.0, -1.0]], np.float32))
    np.testing.assert_allclose(x.grad, [[2.0, -2.0]])
    z = mr.tensor([3.0], requires_grad=True)
    (z * z).backward()  # one element: the implicit gradient is 1
    np.testing.assert_allclose(z.grad, [6.0])


@pytest.mark.parametrize("data, dtype", [([1.0, 2.0], np.float32), (np.ones(2), np.float64),
                                         (np.ones(2, np.float32), np.float32), ([1, 2], np.int64)])
def test_tensor_dtype_follows_pytorch(data, dtype):
    assert mr.tensor(data).dtype == dtype


def test_float64_is_kept_end_to_end():
    x = mr.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    w = mr.tensor(np.ones((4, 3)), requires_grad=True)
    y = F.cross_entropy(F.linear(x, w).tanh() ** 2, np.array([0, 3]))
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64 and w.grad.dtype == np.float64


def test_tensor_basics():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = mr.tensor(data)
    data[0, 0] = 100  # mr.tensor copies
    assert t.numpy()[0, 0] == 0
    assert t.shape == (2, 3) and t.ndim == 2 and t.numel() == 6 and t.size() == (2, 3) and len(t) == 2 and t.device == "cpu"
    assert mr.tensor([[2.5]]).item() == 2.5
    assert t.to("cpu") is t
    assert np.asarray(t).shape == (2, 3)
    assert "requires_grad=True" in repr(mr.tensor([1.0], requires_grad=True))
    assert t.double().dtype == np.float64 and t.double().float().dtype == np.float32


def test_numpy_operands_on_the_left_use_reflected_operators():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], np.float32) * x
    assert isinstance(y, mr.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_astype_is_differentiable():
    x = mr.tensor([1.0, 2.0], requires_grad=True)
    y = (x.double() * 3).sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_manual_seed_makes_the_default_generator_reproducible():
    from minires.rng import default_generator
    mr.manual_seed(7)
    first = default_generator().standard_normal(3)
    mr.manual_seed(7)
    assert_close(default_generator().standard_normal(3), first, "same seed, same numbers")
    with pytest.raises(ValueError):
        mr.manual_seed(-1)


def test_gradients_match_torch_through_a_small_network():
    rng = np.random.default_rng(3)
    x, w1, b1, w2 = rng.standard_normal((5, 4)), rng.standard_normal((6, 4)), rng.standard_normal(6), \
        rng.standard_normal((3, 6))
    target = np.array([0, 2, 1, 1, 0])

    def net(F_, x, w1, b1, w2, ce):
        h = F_.relu(F_.linear(x, w1, b1))  # (5, 6)
        return ce(F_.linear(h + F_.linear(h, w1 @ w1.T), w2))  # a residual join around a (6, 6) layer

    check_against_torch(
        lambda x, w1, b1, w2: net(F, x, w1, b1, w2, lambda z: F.cross_entropy(z, target)),
        lambda x, w1, b1, w2: net(torch.nn.functional, x, w1, b1, w2,
                                  lambda z: torch.nn.functional.cross_entropy(z, torch.from_numpy(target))),
        [x, w1, b1, w2])


def test_backward_twice_names_the_op_and_the_remedy():
    x = mr.tensor(np.ones(2), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(AutogradError, match=r"^backward through sum a second time: its saved arrays were freed by "
                                            r"the first backward; pass retain_graph=True to the first call$"):
        y.backward()


@pytest.mark.parametrize("replacement, message", [
    (np.ones(3), r"^register_hook: gradient of shape \(3,\) does not match the tensor's shape \(2,\)$"),
    (np.ones(2, np.float32), r"^register_hook: gradient of dtype float32 does not match the tensor's dtype float64$"),
])
def test_a_hook_returning_a_gradient_of_another_shape_or_dtype_is_refused_in_these_words(replacement, message):
    x = mr.tensor(np.ones(2), requires_grad=True)
    x.register_hook(lambda g: replacement)
    with pytest.raises((ShapeError, DTypeError), match=message):
        (x * 2).sum().backward()


def test_a_leaf_s_grad_never_shares_memory_with_an_array_the_user_holds():
    """The upstream gradient given to backward, and a hook's replacement, are copied into .grad: changing
    them afterwards changes nothing (the engine hands over without a copy only arrays it made itself)."""
    x = mr.tensor(np.ones(2), requires_grad=True)
    upstream = np.full(2, 3.0)
    x.backward(upstream)
    upstream[:] = -1
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    z = mr.tensor(np.ones(2), requires_grad=True)
    kept = np.full(2, 7.0)
    z.register_hook(lambda g: kept)  # z receives a sum (two uses): the engine's own array, replaced here
    (z * 2 + z * 3).sum().backward()
    kept[:] = -1
    np.testing.assert_array_equal(z.grad.numpy(), [7.0, 7.0])


def test_a_post_accumulate_hook_gets_the_leaf_with_its_new_grad():
    x = mr.tensor(np.ones(2), requires_grad=True)
    seen = []
    x.register_post_accumulate_grad_hook(lambda t: seen.append((t is x, t.grad.numpy().tolist())))
    (x * 4).sum().backward()
    assert seen == [(True, [4.0, 4.0])]


def test_a_leaf_whose_array_was_replaced_is_checked_against_its_new_shape_and_dtype():
    """Module.to / astype replace a parameter's array: its graph node must follow (never a stale shape)."""
    x = mr.tensor(np.ones(2, np.float32), requires_grad=True)
    (x * 2).sum().backward()
    x.array, x.grad = np.ones(3, np.float64), None
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    assert x.grad.dtype == np.float64
