"""In-place ops and torch's version counters (minires/inplace.py): gradients through in-place changes equal
torch's, and a tensor that a Function saved and that was changed in place afterwards stops backward with an
error naming the op — where torch stops too. float64, random upstream gradients."""
import numpy as np
import pytest

import minires as mr
from minires.errors import AutogradError, DTypeError
from minires.function import Function

torch = pytest.importorskip("torch")


def run_both(program, *arrays, seed=0):
    """program(lib, *leaves) -> output, run with minires and torch on the same float64 leaves; returns
    (ours, theirs) as (output values, leaf gradients) after a backward with a random upstream gradient."""
    results = []
    for lib, make in ((mr, lambda a: mr.tensor(a, requires_grad=True)),
                      (torch, lambda a: torch.tensor(a, requires_grad=True))):
        leaves = [make(a) for a in arrays]
        out = program(lib, *leaves)
        upstream = np.random.default_rng(seed).standard_normal(tuple(out.shape))
        out.backward(upstream if lib is mr else torch.from_numpy(upstream))
        grads = [np.zeros(np.shape(a)) if t.grad is None else t.grad.numpy() for t, a in zip(leaves, arrays)]
        results.append((out.detach().numpy(), grads))
    return results


@pytest.mark.parametrize("program", [
    lambda lib, x, w: (lambda y: (y.add_(w), y)[1])(x * 2),                  # add_ with a tensor in the graph
    lambda lib, x, w: (lambda y: (y.add_(w, alpha=-3), y)[1])(x * 1),
    lambda lib, x, w: (lambda y: (y.mul_(w), y)[1])(x + 0),                  # mul_ needs its own old value
    lambda lib, x, w: (lambda y: (y.div_(w.abs() + 1), y)[1])(x * 2),
    lambda lib, x, w: (lambda y: (y.sub_(w).relu_(), y)[1])(x * 3),
    lambda lib, x, w: (lambda y: (y.clamp_(-0.5, 0.5), y * w)[1])(x - 0.1),
    lambda lib, x, w: (lambda y: (y.copy_(w * 2), y * x)[1])(x * 1),         # copy_: history from the source
    lambda lib, x, w: (lambda y: (y.__setitem__((0, slice(1, 3)), w[1, :2]), y)[1])(x * 1),
    lambda lib, x, w: (lambda y: (y.__setitem__(y > 0, 0.0), y * w)[1])(x * 1),
    lambda lib, x, w: (lambda y: (y.zero_(), y + w)[1])(x * 2),
    lambda lib, x, w: (lambda y: (y.copy_(lib.ones(3, 4, dtype=lib.float64)), y * w + x)[1])(x * 2),
])
def test_in_place_ops_in_the_graph_give_torch_s_gradients(program):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    (ours, our_grads), (theirs, their_grads) = run_both(program, x, w)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_residual_block_with_in_place_relu_and_plus_equals_matches_torch():
    def program(lib, x, w1, w2):
        out = lib.nn.functional.conv2d(x, w1, padding=1)
        out = lib.nn.functional.relu(out, inplace=True)
        out = lib.nn.functional.conv2d(out, w2, padding=1)
        out += x
        return lib.nn.functional.relu(out, inplace=True)
    rng = np.random.default_rng(2)
    arrays = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((3, 3, 3, 3)), rng.standard_normal((3, 3, 3, 3))
    (ours, our_grads), (theirs, their_grads) = run_both(program, *arrays)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("program, op", [
    (lambda lib, x: (lambda y: (y.add_(1), y.sum())[1])(x.exp()), "add_"),          # exp saved its output
    (lambda lib, x: (lambda y: (y.mul_(2), y.sum())[1])(x.sigmoid()), "mul_"),
    (lambda lib, x: (lambda h: (lambda z: (h.zero_(), z.sum())[1])(h * h))(x + 1), "zero_"),  # mul saved h
    (lambda lib, x: (lambda h: (lambda z: (h[0].add_(1), z.sum())[1])(h * h))(x + 1), "add_"),  # via a view
    (lambda lib, x: (lambda z: (z.__iadd__(1), z.sum())[1])((x + 1).relu()), "add_"),  # relu saved its output
    (lambda lib, x: (lambda y: (y.div_(2), y.sum())[1])(x.tanh()), "div_"),
    (lambda lib, x: (lambda y: (y.detach().add_(1), y.sum())[1])(x.exp()), "add_"),  # detach shares the counter
    (lambda lib, x: (lambda y, v: (y.mul_(v), v.add_(1), y.sum())[2])(x + 0, x * 2), "add_"),  # mul_'s other operand
    (lambda lib, x: (lambda h: (lambda y: (h.add_(1), y.sum())[1])(  # batch-norm keeps h inside its saved state
        lib.nn.functional.batch_norm(h, None, None, training=True)))(x * 1), "add_"),
])
def test_changing_a_saved_tensor_in_place_stops_backward_as_in_torch(program, op):
    x = np.random.default_rng(3).standard_normal((2, 3))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        program(torch, torch.tensor(x, requires_grad=True)).backward()
    with pytest.raises(AutogradError, match=rf"^one of the tensors \w+ saved for backward was modified by an "
                                            rf"in-place operation \({op}\): it is at version 1, expected version 0; "
                                            rf"the gradient would be wrong\. .* or \.clone\(\) before changing it$"):
        program(mr, mr.tensor(x, requires_grad=True)).backward()


@pytest.mark.parametrize("lib", [mr, torch])
def test_changes_that_do_not_touch_saved_values_are_allowed_as_in_torch(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2              # mul by a number saves x (a leaf, unchanged) and nothing of y
    z = y + 1              # add saves nothing
    y.add_(5)
    h = x + 1
    r = h.relu()           # relu saves its output, not its input
    h.mul_(3)
    (z.sum() + r.sum()).backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_a_leaf_that_requires_grad_is_changed_in_place_only_without_recording():
    w = mr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(AutogradError, match=r"^add_: a leaf tensor that requires grad cannot be changed in place "
                                            r"while gradients are recorded \(its \.grad would not match its values\); "
                                            r"do it under `with minires\.no_grad\(\):` or on its \.data, as in torch$"):
        w.add_(1)
    with pytest.raises(AutogradError, match="leaf"):
        w.zero_()
    with mr.no_grad():
        w.add_(1)
        w -= 0.5
    assert w.tolist() == [1.5, 2.5] and w.requires_grad and w.grad_fn is None and w._version == 2
    w.data.add_(1)  # .data: allowed and not counted
    assert w._version == 2 and w.tolist() == [2.5, 3.5]


def test_plus_equals_keeps_the_object_and_casts_as_torch():
    x = mr.zeros(3)
    y = x
    y += 1
    assert y is x and x.tolist() == [1.0, 1.0, 1.0]
    counts = mr.zeros(3, dtype=mr.long)
    counts[mr.tensor(1)] += 1
    assert counts.tolist() == [0, 1, 0]
    with pytest.raises(DTypeError, match=r"^add_: a result of dtype float32 cannot be written in place into a "
                                         r"tensor of dtype int64$"):
        counts += 0.5
    with pytest.raises(ValueError, match=r"^add_: cannot write into this tensor in place \(.*\); an expanded "
                                         r"tensor shares memory between elements: \.clone\(\) it first$"):
        mr.zeros(1, 3).expand(2, 3).add_(1)
    with pytest.raises(ValueError, match=r"^add_: the result has shape \(2, 3\) but the tensor changed in place "
                                         r"has shape \(3,\); an in-place op cannot change a tensor's shape$"):
        mr.zeros(3).add_(mr.ones(2, 3))


def test_fill_normal_and_uniform_draw_in_place_from_the_default_generator():
    mr.manual_seed(0)
    a = mr.empty(4).normal_(0, 2)
    mr.manual_seed(0)
    b = mr.empty(4).normal_(0, 2)
    assert a.tolist() == b.tolist() and mr.empty(3).uniform_(2, 3).min().item() >= 2
    assert mr.empty(2).fill_(7).tolist() == [7.0, 7.0]


class SquareSavingNoneFirst(Function):
    """A user's own Function whose saved tuple starts with None: the arrays after it are still watched."""
    def forward(self, x, unused):
        self.save_for_backward(unused, x)
        return x * x

    def backward(self, grad):
        return 2 * self.saved_tensors[1] * grad, None


def test_a_user_function_s_saved_arrays_are_watched_past_a_none():
    h = mr.tensor([1.0, 2.0], requires_grad=True) * 1
    y = SquareSavingNoneFirst.apply(h, None)
    h.add_(1)
    with pytest.raises(AutogradError, match=r"squaresavingnonefirst saved for backward was modified .*\(add_\)"):
        y.sum().backward()


@pytest.mark.parametrize("lib", [mr, torch])
def test_retain_grad_after_an_in_place_op_sees_the_new_values_gradient(lib):
    x = lib.tensor([1.0, -2.0], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.retain_grad()
    (y * y).sum().backward()
    assert y.grad.tolist() == [6.0, -6.0] and x.grad.tolist() == [12.0, -12.0]


@pytest.mark.parametrize("lib", [mr, torch])
def test_an_in_place_change_without_recording_keeps_the_history(lib):
    x = lib.tensor([1.0, -2.0], requires_grad=True)
    y = x * 2
    with lib.no_grad():
        y.add_(1)  # not recorded: y keeps MulBackward, and its gradient ignores the add
    assert y.requires_grad and repr(y.grad_fn).startswith("<MulBackward") and y.tolist() == [3.0, -3.0]
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_a_tensor_multiplied_in_place_by_itself_gets_the_square_s_gradient():
    """torch refuses this backward (mul_ saved its operand, which is the tensor it overwrote); minires keeps a
    copy of the old value for the op, so the gradient is the square's."""
    rng = np.random.default_rng(4)
    x_value, w_value, upstream = rng.standard_normal((3, 2, 3))
    x, w = mr.tensor(x_value, requires_grad=True), mr.tensor(w_value, requires_grad=True)
    y = x + 0
    y.mul_(y)
    (y * w).backward(upstream)
    np.testing.assert_allclose(y.numpy(), x_value ** 2, rtol=1e-15)
    np.testing.assert_allclose(x.grad.numpy(), 2 * x_value * w_value * upstream, rtol=1e-14)
    np.testing.assert_allclose(w.grad.numpy(), x_value ** 2 * upstream, rtol=1e-14)
