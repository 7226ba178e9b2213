"""The engine's supported instrumentation: op hooks, replaceable joins, functional_call. Tools use these
instead of patching the engine; these tests pin down what the tools rely on."""
import numpy as np
import pytest

import minires as mr
from minires import F, models, nn, op_hooks
from minires.analysis import lesion
from minires.errors import UnknownNameError


def _input(shape=(2, 3, 8, 8), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_an_op_hook_sees_every_forward_and_backward_with_its_inputs():
    calls = []

    def hook(node, phase, inputs, run):
        result = run()
        calls.append((node.op_name(), phase, [a.shape for a in inputs]))
        return result

    x = mr.tensor(np.ones((2, 3)), requires_grad=True)
    with op_hooks.registered(hook):
        (x.exp() * 2).sum().backward()
    assert calls == [("exp", "forward", [(2, 3)]), ("mul", "forward", [(2, 3), ()]), ("sum", "forward", [(2, 3)]),
                     ("sum", "backward", [()]), ("mul", "backward", [(2, 3)]), ("exp", "backward", [(2, 3)])]
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.e * np.ones((2, 3)))
    calls.clear()
    x.exp()
    assert calls == []  # removed on leaving the block


def test_op_hooks_nest_first_registered_outermost_and_their_results_are_used():
    order = []

    def named(label):
        def hook(node, phase, inputs, run):
            order.append(f"{label} in")
            result = run()
            order.append(f"{label} out")
            return result
        return hook

    outer, inner = op_hooks.register(named("outer")), op_hooks.register(named("inner"))
    try:
        y = F.relu(mr.tensor([-1.0, 2.0]))
    finally:
        inner.remove(), outer.remove()
    assert order == ["outer in", "inner in", "inner out", "outer out"]
    np.testing.assert_array_equal(y.numpy(), [0.0, 2.0])


def test_the_parity_recorders_see_every_relu_of_both_engines_in_the_same_order():
    torch = pytest.importorskip("torch")
    from minires.verify import parity, torch_reference

    model, twin = models.resnet20(), torch_reference.build("resnet20")
    twin.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in model.state_dict().items()})
    x = _input((2, 3, 16, 16))
    with parity._relu_inputs() as ours, parity._torch_relu_inputs(twin) as theirs:
        model(mr.tensor(x))
        twin(torch.from_numpy(x))
    assert len(ours) == len(theirs) == 1 + 9 * 2  # the stem, then two ReLUs per block (the join's included)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    assert parity.count_kink_flips(ours, theirs) == 0
    np.testing.assert_allclose(ours[-1], theirs[-1], rtol=1e-4, atol=1e-4)  # the last join's input


def test_the_profiler_times_ops_through_a_hook_and_removes_it():
    from minires.bench.profiler import profile_ops

    with profile_ops() as profile:
        F.relu(mr.tensor([1.0]))
    assert profile.calls[("relu", "forward")] == 1
    assert op_hooks._hooks == []


def test_functional_call_runs_a_module_on_other_parameters_and_restores_its_own():
    layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
    own = layer.weight
    zeros = mr.tensor(np.zeros((2, 3), np.float32))
    y = nn.functional_call(layer, {"weight": zeros}, mr.tensor(np.ones((1, 3), np.float32)))
    np.testing.assert_array_equal(y.numpy(), layer.bias.numpy()[None])
    assert layer.weight is own
    with pytest.raises(UnknownNameError, match="has no parameter 'wieght'"):
        nn.functional_call(layer, {"wieght": zeros}, mr.tensor(np.ones((1, 3), np.float32)))
    assert layer.weight is own


def test_a_block_exposes_its_join_and_a_replaced_join_routes_the_gradient():
    block = nn.BasicBlock(4, 4, shortcut="B").eval()
    assert isinstance(block.join, nn.ResidualJoin) and block.join.relu
    x = mr.tensor(_input((1, 4, 5, 5)), requires_grad=True)
    with lesion.routed([block], [False]):  # through the shortcut only: dL/dx = relu mask of y
        y = block(x)
        y.backward(np.ones(y.shape, np.float32))
    assert isinstance(block.join, nn.ResidualJoin)  # put back
    np.testing.assert_array_equal(x.grad.numpy(), (y.numpy() > 0).astype(np.float32))
    assert nn.BasicBlock(4, 4, shortcut=None).join is None  # a plain block has nothing to join


def test_sequential_items_can_be_replaced_in_place():
    stage = nn.Sequential(nn.Identity(), nn.ReLU())
    stage[0] = nn.Flatten()
    assert isinstance(stage[0], nn.Flatten) and [name for name, _ in stage.named_children()] == ["0", "1"]
