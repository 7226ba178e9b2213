"""Bad input gets a clear error naming the op, what it expected and what it got, before any work is done."""
import re

import numpy as np
import pytest

import minires as mr
from minires import F
from minires.verify import op_catalog
from minires.errors import DeviceError, DeviceUnavailableError, DTypeError, ShapeError
from minires.function import Function


def t(*shape, dtype=np.float32, grad=True):
    return mr.tensor(np.ones(shape, dtype), requires_grad=grad)


@pytest.mark.parametrize("call, error, words", [
    (lambda: t(2, 3) + t(4, 3), ShapeError, ["add", "(2, 3)", "(4, 3)"]),
    (lambda: t(2, 3) * t(2, 3, dtype=np.float64), DTypeError, ["mul", "float32", "float64"]),
    (lambda: t(2, 3) @ t(4, 5), ShapeError, ["matmul", "(2, 3)", "(4, 5)"]),
    (lambda: F.linear(t(2, 3), t(4, 5)), ShapeError, ["linear", "5 features", "(2, 3)"]),
    (lambda: F.linear(t(2, 5), t(4, 5), t(3)), ShapeError, ["linear", "bias", "(4,)"]),
    (lambda: t(2, 3).reshape(4, 2), ShapeError, ["reshape", "(2, 3)", "(4, 2)"]),
    (lambda: t(2, 3).transpose(0, 0), ShapeError, ["transpose", "permutation"]),
    (lambda: t(2, 3).sum(axis=2), ShapeError, ["sum", "axis 2", "2-D"]),
    (lambda: F.cat([t(2, 3), t(2, 4)], axis=0), ShapeError, ["cat", "(2, 3)", "(2, 4)"]),
    (lambda: F.pad(t(2, 3), (1.5, 1)), TypeError, ["pad", "ints"]),  # (a negative size crops, as in torch)
    (lambda: F.pad(t(2, 3), (1,)), ShapeError, ["pad", "even"]),
    (lambda: t(2, 3)[5], IndexError, ["getitem", "(2, 3)"]),
    (lambda: F.cross_entropy(t(2, 3), np.array([0.0, 1.0])), DTypeError, ["cross_entropy", "integer"]),
    (lambda: F.cross_entropy(t(2, 3), np.array([0, 1, 2])), ShapeError, ["cross_entropy", "(2,)", "(3,)"]),
    (lambda: F.cross_entropy(t(2, 3), np.array([0, 3])), ValueError, ["cross_entropy", "[0, 3)"]),
    (lambda: F.cross_entropy(t(6), np.array([0])), ShapeError, ["cross_entropy", "(N, C)"]),
    (lambda: F.cross_entropy(t(2, 3), np.array([0, 1]), reduction="avg"), ValueError, ["reduction", "avg"]),
    (lambda: t(2) ** t(2), TypeError, ["pow", "exponent"]),
    (lambda: mr.tensor([1, 2], requires_grad=True), DTypeError, ["floating-point", "int64"]),
    (lambda: mr.tensor([1.0], device="tpu"), DeviceError, ["unknown device", "tpu"]),
])
def test_bad_input_raises_a_named_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_error_types_are_the_builtin_ones_users_catch():
    assert issubclass(ShapeError, ValueError) and issubclass(DTypeError, TypeError)
    assert issubclass(DeviceError, ValueError)


class _CupyLikeArray(np.ndarray):
    """A NumPy array that reports itself as a CuPy array: enough to test the device check without a GPU."""


_CupyLikeArray.__module__ = "cupy._core.core"


def test_mixed_devices_are_refused_before_any_kernel_runs():
    gpu_like = mr.Tensor._make(np.ones(3, np.float32).view(_CupyLikeArray))
    with pytest.raises(DeviceError, match="add: inputs are on different devices: cpu and cuda"):
        t(3) + gpu_like


@pytest.mark.skipif(mr.backend.cuda_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(DeviceUnavailableError, match="device 'cuda' is unavailable"):
        mr.tensor([1.0], device="cuda")
    with pytest.raises(DeviceUnavailableError, match="CuPy"):
        t(2).to("cuda")


def test_upstream_gradient_must_match_shape_and_dtype():
    y = t(2, 3) * 2
    with pytest.raises(ShapeError, match=r"backward: gradient of shape \(3,\) does not match .*\(2, 3\)"):
        y.backward(np.ones(3, np.float32))
    with pytest.raises(DTypeError, match="float64 does not match the tensor's dtype float32"):
        y.backward(np.ones((2, 3)))


class _BadBackward(Function):
    """A broken op whose backward returns a gradient of the wrong shape (it would broadcast if allowed)."""
    name = "bad_op"

    def forward(self, x):
        return x * 2

    def backward(self, g):
        return g.sum(axis=0)


def test_a_mis_shaped_gradient_never_broadcasts_into_a_parameter():
    weight = t(4, 3)
    with pytest.raises(ShapeError, match=r"bad_op: gradient of shape \(3,\) does not match .*\(4, 3\)"):
        _BadBackward.apply(weight).sum().backward()
    assert weight.grad is None


def test_a_hook_returning_the_wrong_shape_is_refused():
    x = t(2, 2)
    y = x * 2
    y.register_hook(lambda g: np.ones(3, np.float32))
    with pytest.raises(ShapeError, match="register_hook"):
        y.sum().backward()


def test_a_grad_of_the_wrong_shape_is_refused_when_assigned():
    x = t(2, 2)
    with pytest.raises(ShapeError, match=r"\.grad: gradient of shape \(2,\) does not match the tensor's shape"):
        x.grad = np.ones(2, np.float32)  # set by hand to the wrong shape, as torch refuses it too
    assert x.grad is None


def test_requires_grad_cannot_be_changed_on_a_non_leaf():
    y = t(2) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


def _c(*shape, dtype=np.float32):
    return np.ones(shape, dtype)


@pytest.mark.parametrize("args, error, message", [
    ((_c(3), None, None, None, None, True), ShapeError,
     r"batch_norm: expected an input of shape \(N, C\) or \(N, C, \.\.\.\), got \(3,\)"),
    ((_c(2, 3, dtype=np.int64), None, None, None, None, True), DTypeError,
     r"batch_norm: expected a floating-point input, got dtype int64"),
    *[((_c(2, 3), *[_c(4) if i == k else None for i in range(4)], True), ShapeError,
       rf"batch_norm: {name} must have shape \(3,\) for an input with 3 channels, got \(4,\)")
      for k, name in enumerate(["weight", "bias", "running_mean", "running_var"])],
    *[((_c(2, 3), None, None, *[_c(3, dtype=np.float64) if i == k else _c(3) for i in range(2)], True), DTypeError,
       rf"batch_norm: {name} has dtype float64 but the input has float32")
      for k, name in enumerate(["running_mean", "running_var"])],
    ((_c(2, 3), None, None, None, None, False), ValueError,
     r"batch_norm: evaluation mode needs running_mean and running_var"),
])
def test_batch_norm_errors_name_the_op_the_argument_and_the_sizes(args, error, message):
    """Whole messages: the op's name first, then the argument at fault, what was expected and what was given."""
    x, weight, bias, running_mean, running_var, training = args  # minires' old order in the table
    with pytest.raises(error) as info:
        F.batch_norm(mr.tensor(x), running_mean, running_var, weight, bias, training)
    assert re.fullmatch(message, str(info.value)), str(info.value)


@pytest.mark.parametrize("make, name", [
    (lambda a, b: a + b, "add"), (lambda a, b: a - b, "sub"), (lambda a, b: a * b, "mul"),
    (lambda a, b: a / b, "div"), (lambda a, b: -a, "neg"), (lambda a, b: a ** 3, "pow"),
    (lambda a, b: a.astype(np.float64), "astype"),
    (lambda a, b: F.batch_norm(a, None, None, None, None, True), "batch_norm"),
])
def test_each_op_records_its_name_in_the_graph(make, name):
    """The name a node carries is what error messages, the profiler and the graph show."""
    a, b = t(3, 4), t(3, 4)
    node = make(a, b).grad_fn
    assert node is not None and node.op_name() == name


def test_the_device_move_is_named_to():
    from minires.functional.conversion import ToDevice

    assert ToDevice.op_name() == "to"  # a move between devices needs a GPU to be recorded in a graph here


@pytest.mark.parametrize("missing", [0, 1])
def test_batch_norm_eval_needs_both_running_statistics(missing):
    stats = [_c(3), _c(3)]
    stats[missing] = None
    with pytest.raises(ValueError, match=r"^batch_norm: evaluation mode needs running_mean and running_var$"):
        F.batch_norm(mr.tensor(_c(2, 3)), *stats, None, None, False)


@pytest.mark.parametrize("which", ["running_mean", "running_var"])
def test_batch_norm_running_statistics_on_another_device_are_refused(which):
    stats = {"running_mean": _c(3), "running_var": _c(3)}
    stats[which] = stats[which].view(_CupyLikeArray)
    with pytest.raises(DeviceError, match=rf"^batch_norm: {which} is on cuda, the input on cpu$"):
        F.batch_norm(mr.tensor(_c(2, 3)), stats["running_mean"], stats["running_var"], None, None, True)


def test_batch_norm_training_needs_two_values_per_channel_message():
    with pytest.raises(ValueError, match=r"^batch_norm: training needs more than one value per channel, got "
                                         r"input shape \(1, 3\)$"):
        F.batch_norm(mr.tensor(_c(1, 3)), None, None, None, None, True)


def test_astype_of_a_grad_tensor_to_an_integer_leaves_the_graph_as_in_torch():
    x = t(2)
    y = x.astype(np.int32)
    assert y.dtype == np.int32 and not y.requires_grad and y.grad_fn is None
    with pytest.raises(DTypeError, match=r"^astype: 'float33' is not a dtype"):
        x.astype("float33")


@pytest.mark.parametrize("name", op_catalog.names())
def test_every_catalog_op_records_its_own_name(name):
    """Each op's graph node carries the op's public name (flatten is a reshape underneath)."""
    case = op_catalog.get(name)
    inputs, params = op_catalog.draw_case(case)
    output = case.fn(*[None if a is None else mr.tensor(a, requires_grad=True) for a in inputs], **params)
    expected = {"batch_norm_eval": "batch_norm", "flatten": "reshape", "getitem_array": "getitem"}.get(name, name)
    assert output.grad_fn.op_name() == expected


def test_rpow_is_named_rpow():
    assert (2 ** t(3)).grad_fn.op_name() == "rpow"


@pytest.mark.parametrize("call, message", [
    (lambda: F.add(1.0, 2.0), r"^add: expected at least one Tensor, got float and float$"),
    (lambda: t(2) ** np.array([1.0, 2.0]), r"^pow: the exponent must be a Python number, got ndarray$"),
    (lambda: t(2) ** True, r"^pow: the exponent must be a Python number, got bool$"),
    (lambda: F.rpow(-2.0, t(2)), r"^rpow: the base must be a positive Python number, got -2\.0$"),
    (lambda: F.rpow(0, t(2)), r"^rpow: the base must be a positive Python number, got 0$"),
    (lambda: F.rpow(True, t(2)), r"^rpow: the base must be a positive Python number, got True$"),
    (lambda: F.rpow("2", t(2)), r"^rpow: the base must be a positive Python number, got '2'$"),
])
def test_arithmetic_argument_errors_are_whole_sentences(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_a_numpy_scalar_exponent_keeps_float32():
    assert (t(2) ** np.float64(2.0)).dtype == np.float32  # .item() makes it a Python number (NEP 50)


def test_residual_add_joins_without_relu_unless_asked():
    out = mr.tensor(np.array([-1.0, 2.0], np.float32))
    assert F.residual_add(out, mr.tensor(np.zeros(2, np.float32))).numpy().tolist() == [-1.0, 2.0]


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.residual_add(t(2, 3, 4, 4), t(2, 3, 4, 5)), ShapeError,
     r"residual_add: the residual branch has shape \(2, 3, 4, 4\) but the shortcut has \(2, 3, 4, 5\); they must "
     r"be equal \(use a projection or option-A shortcut\)"),
    (lambda: F.shortcut_a(t(2, 4, 4, 4), 3, 1), ShapeError,
     r"shortcut_a: out_channels \(3\) must be at least the input's channels \(4\)"),
    (lambda: F.shortcut_a(t(2, 4, 4, 4), 8, 0), ValueError, r"shortcut_a: stride must be at least 1, got 0"),
    (lambda: F.shortcut_a(t(2, 4), 8, 2), ShapeError,
     r"shortcut_a: expected a 4-D input \(N, C, H, W\), got shape \(2, 4\)"),
])
def test_residual_join_and_option_a_errors_are_whole_sentences(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert re.fullmatch(message, str(info.value)), str(info.value)
    assert str(info.value).startswith(message.split(":")[0] + ":")
