"""The ResNet zoo: exact parameter counts, and parity with independent PyTorch twins given the same weights."""
import numpy as np
import pytest
import torch

import minires as mr
from minires import models
from minires.verify import torch_reference
from minires.verify.parity import (MODES, TOLERANCE, LayerParity, ParityCheck, ParityReport, check_parity,
                            count_kink_flips, relative_error)

PARAMETER_COUNTS = {  # DESIGN.md / REFERENCES.md (torchvision; He et al. 2015 option A)
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808, "resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018,
    "resnet110": 1_727_962, "resnet1202": 19_421_274,
    # plain nets have the same layers (option A adds no parameters)
    "plain20": 269_722, "plain32": 464_154, "plain44": 658_586, "plain56": 853_018, "plain110": 1_727_962,
}


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PARAMETER_COUNTS))
def test_parameter_counts(name):
    assert count(models.get(name)) == PARAMETER_COUNTS[name]


def test_every_named_model_is_covered_or_preact():
    assert set(models.names()) - set(PARAMETER_COUNTS) == {"preact_resnet20", "preact_resnet56",
                                                           "preact_resnet110"}


def test_projection_shortcuts_add_their_parameters():
    a, b, c = (count(models.cifar_resnet(20, shortcut=s)) for s in "ABC")
    assert a == 269_722
    # B: projections where the shape changes (16->32, 32->64): 1x1 conv + BN
    assert b == a + (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert c > b  # C: a projection in every block


@pytest.mark.parametrize("name, kwargs, size", [
    ("resnet20", {"shortcut": "A"}, 32),
    ("resnet20", {"shortcut": "B"}, 32),
    ("resnet20", {"shortcut": "C"}, 32),
    ("plain20", {}, 32),
    ("preact_resnet20", {}, 32),
    ("resnet18", {}, 64),
    ("resnet50", {"num_classes": 10}, 64),
])
def test_every_gradient_matches_torch_in_float64_and_forward_values_in_float32(name, kwargs, size):
    """Train and eval mode: per-layer outputs, logits, loss, every parameter gradient, running statistics.

    Gradients are compared in float64 only: in float32 a ReLU input within rounding of zero can fall on
    opposite sides of zero in the two engines (a kink flip, see minires.verify.parity), and which ones do depends on
    the machine's BLAS, so no float32 tolerance for whole-network gradients holds everywhere. Forward values,
    the loss and running statistics barely notice a flip and are compared in float32 too."""
    check = check_parity(name, batch=3, size=size, seed=0, **kwargs)
    for row in check.double.layers:
        assert row.worst() < 1e-9, row
    for row in check.single.layers:
        assert max(row.forward.values()) < 1e-3 and row.running_stats < 1e-3, row
    for report, tolerance in ((check.double, 1e-9), (check.single, 1e-3)):
        assert max(report.logits.values()) < tolerance and max(report.loss.values()) < tolerance, report.dtype
    assert check.passed


def _report(dtype, gradient, forward=1e-7, flips=0):
    """A one-layer ParityReport with the given errors (for the verdict logic, independent of any machine)."""
    row = LayerParity("layer1.0", forward=dict.fromkeys(MODES, forward), gradient=dict.fromkeys(MODES, gradient))
    return ParityReport("resnet20", (1, 3, 32, 32), dtype, TOLERANCE[dtype], [row], dict.fromkeys(MODES, 0.0),
                        dict.fromkeys(MODES, 0.0), {"train": flips, "eval": 0})


@pytest.mark.parametrize("judged, single, double, verdict", [
    ("default", _report("float32", 5e-2, flips=3), _report("float64", 1e-14, 1e-15), "ok"),  # float32 grads not judged
    ("float32", _report("float32", 5e-2, flips=3), _report("float64", 1e-14, 1e-15),
     "explained by 3 kink flips (float64 agrees to 1.0e-14)"),
    ("float32", _report("float32", 5e-2, flips=0), _report("float64", 1e-14, 1e-15), "FAILED"),  # no flip to blame
    ("float32", _report("float32", 5e-2, flips=3), _report("float64", 1e-5, 1e-15), "FAILED"),  # float64 disagrees too
    ("default", _report("float32", 1e-6, forward=2e-3), _report("float64", 1e-14, 1e-15), "FAILED"),  # float32 forward
    ("float64", None, _report("float64", 1e-14, 1e-7), "FAILED"),  # float64 forward over 1e-9
])
def test_parity_verdicts(judged, single, double, verdict):
    check = ParityCheck(judged, double, single)
    assert check.verdict("layer1.0") == verdict
    assert check.passed == (verdict != "FAILED")


def test_kink_flips_count_inputs_on_opposite_sides_of_zero():
    ours = [np.array([-1e-7, 2.0, 0.0]), np.array([[3.0]])]
    theirs = [np.array([1e-7, 2.0, 0.0]), np.array([[-3.0]])]
    assert count_kink_flips(ours, theirs) == 2
    assert count_kink_flips([np.zeros(4)], [np.zeros((2, 2))]) == 4  # recorded shapes differ: all count


def test_running_statistics_match_torch_after_several_training_forwards():
    model = models.resnet20(seed=3)
    twin = torch_reference.build("resnet20")
    twin.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in model.state_dict().items()})
    rng = np.random.default_rng(0)
    for step in range(3):
        x = (rng.standard_normal((4, 3, 16, 16)) * (step + 1)).astype(np.float32)
        model(mr.tensor(x))
        twin(torch.from_numpy(x))
    theirs = twin.state_dict()
    for key, value in model.state_dict().items():
        assert relative_error(value.numpy(), theirs[key].numpy()) < 1e-5, key
    assert model.bn1.num_batches_tracked.item() == 3


def test_zero_init_residual_makes_each_block_start_as_its_shortcut():
    model = models.resnet20(zero_init_residual=True)
    for block in model.modules():
        if isinstance(block, mr.nn.BasicBlock):
            assert not block.bn2.weight.numpy().any()
    model.eval()
    block = model.layer1[0]
    x = mr.tensor(np.abs(np.random.default_rng(0).standard_normal((1, 16, 8, 8))).astype(np.float32))
    np.testing.assert_allclose(block(x).numpy(), x.numpy(), atol=1e-6)  # relu(0 + x) = x for x >= 0


def test_initialisation_follows_torchvision():
    model = models.resnet56(seed=0)
    w = model.layer3[4].conv1.weight.numpy()
    std = np.sqrt(2.0 / (64 * 3 * 3))  # Kaiming normal, fan_out = out_channels * 3 * 3
    assert abs(w.std() / std - 1) < 0.05 and abs(w.mean()) < 0.01
    assert (model.layer2[0].bn1.weight.numpy() == 1).all() and (model.layer2[0].bn1.bias.numpy() == 0).all()
    assert count(models.resnet20(seed=5)) == count(models.resnet20(seed=6))
    np.testing.assert_array_equal(models.resnet20(seed=5).conv1.weight.numpy(),
                                  models.resnet20(seed=5).conv1.weight.numpy())


def test_a_forward_hook_on_every_block_reads_its_output_and_a_tensor_hook_its_gradient():
    model = models.resnet20(seed=0)
    outputs, gradients = {}, {}

    def keep(name):
        def hook(module, inputs, output):
            outputs[name] = output.shape
            output.register_hook(lambda g: gradients.__setitem__(name, float((g.array ** 2).sum())))
        return hook

    blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, mr.nn.BasicBlock)]
    for name, block in blocks:
        block.register_forward_hook(keep(name))
    x = mr.tensor(np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32))
    mr.F.cross_entropy(model(x), np.array([1, 7])).backward()
    assert len(blocks) == 9 and set(outputs) == set(gradients) == {n for n, _ in blocks}
    assert outputs["layer1.0"] == (2, 16, 32, 32) and outputs["layer3.2"] == (2, 64, 8, 8)
    assert all(g > 0 for g in gradients.values())


@pytest.mark.parametrize("name, kwargs", [("cifar_resnet", {"depth": 8, "shortcut": "B"}),
                                          ("cifar_resnet", {"depth": 8, "shortcut": "A", "preact": True})])
def test_a_whole_network_passes_float64_gradcheck(name, kwargs):
    model = getattr(models, name)(num_classes=3, seed=0, **kwargs).double()
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8))
    report = mr.gradcheck_module(model, [x], lambda logits: mr.F.cross_entropy(logits, np.array([0, 2])),
                                 mode="directional", directions=6)
    assert report.passed and report.checked == 6 and report.max_rel_error < 1e-5


def test_whole_network_gradcheck_catches_a_wrong_gradient(monkeypatch):
    """Break the residual join's backward (drop the shortcut's gradient): the network check must fail."""
    from minires.functional import residual

    original = residual.ResidualAdd.backward
    monkeypatch.setattr(residual.ResidualAdd, "backward", lambda self, g: (original(self, g)[0], None))
    model = models.cifar_resnet(8, shortcut="A", num_classes=3, seed=0).double()
    report = mr.gradcheck_module(model, [np.random.default_rng(2).standard_normal((2, 3, 8, 8))],
                                 lambda logits: logits.sum(), mode="directional", directions=3,
                                 raise_exception=False)
    assert not report.passed


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'resnet19'.*resnet20.*resnet50"):
        models.get("resnet19")


@pytest.mark.parametrize("depth", [21, 4, 100])
def test_cifar_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=r"6n \+ 2.*got " + str(depth)):
        models.cifar_resnet(depth)


def test_wrong_input_channels_name_the_layer_and_the_sizes():
    model = models.resnet20()
    with pytest.raises(ValueError) as info:
        model(mr.tensor(np.zeros((1, 1, 32, 32), np.float32)))
    assert "conv1 (Conv2d)" in str(info.value) and "1 channels" in str(info.value) and "expects 3" in str(info.value)


def test_a_too_small_image_names_the_layer_that_failed():
    net = mr.nn.Sequential(mr.nn.Conv2d(3, 8, 5), mr.nn.ReLU(), mr.nn.Sequential(mr.nn.Conv2d(8, 8, 5)))
    with pytest.raises(ValueError) as info:
        net(mr.tensor(np.zeros((1, 3, 7, 7), np.float32)))
    message = str(info.value)
    assert message.startswith("2.0 (Conv2d): conv2d:") and "5x5" in message and "3x3" in message
