"""Module, Parameter and the layers: the PyTorch-style API the zoo and users rely on."""
import numpy as np
import pytest
import torch

import minires as mr
from minires import models, nn
from minires.nn import StateDictError
from against_torch import check_against_torch


def test_parameters_buffers_and_modules_are_registered_in_order():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 2))
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert [n for n, _ in net.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert list(net.state_dict()) == ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                      "1.num_batches_tracked", "4.weight", "4.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "0", "1", "2", "3", "4"]
    assert len(net) == 5 and isinstance(net[1], nn.BatchNorm2d) and len(net[1:3]) == 2
    assert all(isinstance(v, mr.Tensor) and not v.requires_grad for v in net.state_dict().values())


def test_layers_match_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
    conv = nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3)
    tconv = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3)
    tconv.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in conv.state_dict().items()})
    check_against_torch(lambda t: conv(t), lambda t: tconv(t), [x])
    linear = nn.Linear(9, 4)
    tlinear = torch.nn.Linear(9, 4)
    tlinear.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in linear.state_dict().items()})
    check_against_torch(lambda t: linear(t), lambda t: tlinear(t), [x])
    check_against_torch(lambda t: nn.MaxPool2d(3, 2, 1)(t), lambda t: torch.nn.MaxPool2d(3, 2, 1)(t), [x])
    check_against_torch(lambda t: nn.AvgPool2d(2)(t), lambda t: torch.nn.AvgPool2d(2)(t), [x])
    check_against_torch(lambda t: nn.AdaptiveAvgPool2d(2)(t), lambda t: torch.nn.AdaptiveAvgPool2d(2)(t), [x])


def test_default_init_is_pytorchs_uniform_bound():
    conv = nn.Conv2d(8, 4, 3)
    bound = 1 / np.sqrt(8 * 9)
    assert np.abs(conv.weight.numpy()).max() <= bound and np.abs(conv.bias.numpy()).max() <= bound
    assert conv.weight.numpy().std() > bound / 3


def test_train_eval_and_zero_grad():
    model = models.resnet20(seed=0)
    assert model.training and model.layer2[0].bn1.training
    model.eval()
    assert not any(m.training for m in model.modules())
    x = mr.tensor(np.ones((1, 3, 8, 8), np.float32))
    before = model.bn1.running_mean.numpy().copy()
    mr.F.cross_entropy(model(x), np.array([3])).backward()
    np.testing.assert_array_equal(model.bn1.running_mean.numpy(), before)  # eval: statistics unchanged
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert model.train() is model and model.training


def test_state_dict_round_trip_is_exact():
    source, target = models.resnet20(seed=1), models.resnet20(seed=2)
    source(mr.tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)))  # stats move
    target.load_state_dict(source.state_dict())
    for (key, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert a.dtype == b.dtype and np.array_equal(a, b), key


def test_strict_loading_names_missing_unexpected_and_mismatched_keys():
    model = models.resnet20()
    state = model.state_dict()
    del state["fc.bias"]
    state["fc.extra"] = np.zeros(3, np.float32)
    state["conv1.weight"] = np.zeros((16, 1, 3, 3), np.float32)
    before = model.conv1.weight.numpy().copy()
    with pytest.raises(StateDictError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing keys: fc.bias" in message and "unexpected keys: fc.extra" in message
    assert "conv1.weight: checkpoint (16, 1, 3, 3), model (16, 3, 3, 3)" in message
    np.testing.assert_array_equal(model.conv1.weight.numpy(), before)  # a failed load changes nothing


def test_non_strict_loading_reports_what_it_skipped():
    model = models.resnet20()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    state["head.weight"] = np.zeros(1, np.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["fc.weight", "fc.bias"] and unexpected == ["head.weight"]


def test_forward_hooks_can_replace_the_output_and_be_removed():
    layer = nn.ReLU()
    handle = layer.register_forward_hook(lambda module, inputs, output: output * 2)
    x = mr.tensor([1.0, -1.0])
    assert layer(x).numpy().tolist() == [2.0, 0.0]
    handle.remove()
    assert layer(x).numpy().tolist() == [1.0, 0.0]


def test_to_cpu_and_astype_keep_the_modules_working():
    model = models.resnet20(seed=0).to("cpu").double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.bn1.num_batches_tracked.dtype == np.int64
    out = model(mr.tensor(np.zeros((1, 3, 8, 8))))
    assert out.dtype == np.float64


def test_module_repr_reads_like_pytorch():
    text = repr(models.resnet20())
    assert "(layer2): Sequential(" in text and "Conv2d(16, 32, kernel_size=(3, 3), stride=(2, 2)" in text
    assert "OptionAShortcut(out_channels=32, stride=(2, 2))" in text


def test_submodules_must_call_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.ReLU()

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_replacing_a_submodule_or_a_parameter_keeps_its_place_as_in_torch():
    """A replaced child keeps its position in named_modules/named_parameters (and so in state_dict and the
    parameter order optimisers and DistributedDataParallel see), as torch's Module.__setattr__ does."""
    import torch

    orders = []
    for nn_ in (mr.nn, torch.nn):
        model = nn_.Sequential(nn_.Conv2d(3, 4, 3), nn_.BatchNorm2d(4), nn_.Linear(2, 2))
        setattr(model, "1", nn_.BatchNorm2d(4))
        model[2].weight = nn_.Parameter(model[2].weight.detach() * 2)
        orders.append(([name for name, _ in model.named_modules()], [name for name, _ in model.named_parameters()]))
    assert orders[0] == orders[1]
