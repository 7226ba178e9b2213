"""minires landscape, sharpness and joins: filter-normalised directions, the surface's centre, its measures of
shape, the gradient split at every join, and the sentences each command ends with."""
import json
import math

import numpy as np
import pytest

import minires as mr
from minires import models
from minires.analysis import joins, landscape, sharpness
from minires.analysis.twins import ShortTraining
from minires.cli import main
from minires.errors import ArgumentError


def _digits_like(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, n)


def test_each_filter_of_a_direction_has_the_norm_of_the_weights_filter_and_one_axis_parameters_stay():
    model = models.get("resnet20", num_classes=10, in_channels=1, seed=0)
    direction = landscape.filter_normalized_direction(model, np.random.default_rng(0))
    parameters = dict(model.named_parameters())
    assert set(direction) == set(parameters)
    for name, d in direction.items():
        w = parameters[name].numpy().astype(np.float64)
        assert d.shape == w.shape
        if w.ndim == 1:  # batch-norm weights and biases, the classifier's bias
            assert not d.any(), name
        else:
            np.testing.assert_allclose(np.linalg.norm(d.reshape(len(d), -1), axis=1),
                                       np.linalg.norm(w.reshape(len(w), -1), axis=1), rtol=1e-12, err_msg=name)
            assert not np.allclose(d, w)  # random, not the weights themselves
    assert any(name.endswith("bn1.weight") for name in direction) and "fc.weight" in direction


def test_the_grid_is_symmetric_with_an_exact_zero_and_its_centre_is_the_plain_evaluation_loss():
    alphas = landscape.axis(25, 1.0)
    assert alphas[12] == 0.0 and alphas[0] == -1.0 and alphas[-1] == 1.0
    np.testing.assert_array_equal(alphas, -alphas[::-1])
    model = models.get("plain20", num_classes=10, in_channels=1, seed=0)
    images, labels = _digits_like()
    sharpness.estimate_running_statistics(model, images)
    expected = landscape.evaluation_loss(model, images, labels)
    centre = landscape.weights_of(model)
    rng = np.random.default_rng(1)
    d1, d2 = (landscape.filter_normalized_direction(model, rng) for _ in range(2))
    losses = landscape.losses_along(model, centre, (d1, d2), [(0.5, -0.5), (0.0, 0.0), (1.0, 1.0)], images, labels)
    assert losses[1] == expected  # exactly: the centre is the trained weights, unchanged
    assert losses[0] != expected and losses[2] != expected
    for name, parameter in model.named_parameters():  # put back exactly
        np.testing.assert_array_equal(parameter.numpy(), centre[name].astype(np.float32))


def test_non_convexity_reads_the_curvature_of_known_surfaces():
    a = landscape.axis(11, 1.0)
    x, y = np.meshgrid(a, a, indexing="ij")
    step = a[1] - a[0]
    assert landscape.non_convex_fraction(x ** 2 + y ** 2, step) == 0.0  # a bowl
    assert landscape.non_convex_fraction(x ** 2 - y ** 2, step) == 1.0  # a saddle everywhere
    assert landscape.non_convex_fraction(-(x ** 2) - 3 * y ** 2, step) == 1.0  # a cap
    assert landscape.non_convex_fraction(x ** 2 - 0.05 * y ** 2, step) == 0.0  # bent down by 5%: below the 10% line
    assert landscape.non_convex_fraction(x ** 2 - 0.2 * y ** 2, step) == 1.0
    assert landscape.non_convex_fraction(x * y, step) == 1.0  # a saddle along the diagonals (the cross term)
    half = np.where(x < 0, x ** 2 + y ** 2, x ** 2 - y ** 2)  # bowl on the left half, saddle on the right
    assert 0.3 < landscape.non_convex_fraction(half, step) < 0.7
    assert landscape.local_minima([3, 1, 2, 0, 4]) == 2 and landscape.local_minima([1, 2, 3]) == 0


def _summary(plain20, resnet20, plain56, resnet56, centre=0.1):
    return [{"model": name, "centre_loss": centre, "edge_median_loss": 5.0, "non_convex_fraction": share,
             "line_local_minima": 1}
            for name, share in (("plain20", plain20), ("resnet20", resnet20), ("plain56", plain56),
                                ("resnet56", resnet56))]


def test_the_landscape_message_follows_the_numbers():
    shown = landscape.conclusion(_summary(0.1, 0.02, 0.4, 0.0), classes=10)
    assert shown[-2].endswith("20 layers 10.0% vs 2.0%, 56 layers 40.0% vs 0.0%: this run shows it")
    assert shown[-1].endswith("plain-20 10.0% -> plain-56 40.0%: this run shows it")
    assert shown[0].startswith("plain-20: the loss rises from 0.1 at the weights to 5") and "1 local minimum" in shown[0]
    not_shown = landscape.conclusion(_summary(0.3, 0.02, 0.1, 0.2), classes=10)
    assert not_shown[-2].endswith("this run does not show it at 56 layers")
    assert not_shown[-1].endswith("plain-20 30.0% -> plain-56 10.0%: this run does not show it")
    chance = landscape.conclusion(_summary(0.3, 0.02, 0.1, 0.2, centre=2.25), classes=10)
    assert "it has not trained (loss near chance, ln 10 = 2.30)" in chance[0]
    assert "not trained" not in shown[0]


def test_landscape_options_are_checked():
    for bad, message in (({"grid": 1}, "--grid and --line-points must be odd numbers from 3 on"),
                         ({"grid": 24}, r"\(so that the trained weights are a point of each\), got 24 and 51"),
                         ({"line_points": 50}, "got 25 and 50"),
                         ({"span": 0.0}, "--span must be a positive number"),
                         ({"depths": (8,)}, "--depths must be among 20, 32, 44, 56, 110"),
                         ({"samples": 0}, "--samples and --iterations must be at least 1")):
        with pytest.raises(ArgumentError, match=message):
            landscape.LandscapeConfig(**bad)
    with pytest.raises(ArgumentError, match="--steps must be at least 1 and --probes at least 2"):
        sharpness.SharpnessConfig(probes=1)
    with pytest.raises(ArgumentError, match="--lr-without-bn must be positive, got 0.0"):
        joins.JoinsConfig(lr_without_bn=0.0)


def test_landscape_command_writes_the_grid_the_curve_and_three_figures(tmp_path, capsys):
    argv = ["landscape", "--depths", "20", "--iterations", "2", "--samples", "8", "--grid", "3", "--line-points", "5",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    grid = json.loads((tmp_path / "landscape_grid.json").read_text())["rows"]
    line = json.loads((tmp_path / "landscape_line.json").read_text())["rows"]
    summary = json.loads((tmp_path / "landscape.json").read_text())["rows"]
    assert [r["model"] for r in summary] == ["plain20", "resnet20"]
    assert len(grid) == 2 * 9 and len(line) == 2 * 5
    for row in summary:
        centre = [r["loss"] for r in grid if r["model"] == row["model"] and r["alpha"] == 0 and r["beta"] == 0]
        middle = [r["loss"] for r in line if r["model"] == row["model"] and r["alpha"] == 0]
        assert centre == middle == [row["centre_loss"]]
    assert {p.name for p in tmp_path.glob("*.png")} == {"landscape_contours.png", "landscape_3d.png",
                                                       "landscape_1d.png"}
    assert "Li et al. 2018" in capsys.readouterr().out


def test_landscape_reads_trained_runs_and_refuses_runs_on_different_data(tmp_path, capsys):
    runs = []
    for data, model in (("synthetic", "resnet20"), ("synthetic", "plain20"), ("digits", "resnet20")):
        runs.append(tmp_path / f"{data}-{model}")
        assert main(["train", "--data", data, "--model", model, "--epochs", "1", "--batch-size", "256", "--quiet",
                     "--out", str(runs[-1])]) == 0
    out = tmp_path / "lab"
    assert main(["landscape", "--checkpoint", str(runs[0]), str(runs[1]), "--samples", "8", "--grid", "3",
                 "--line-points", "3", "--out", str(out)]) == 0
    summary = json.loads((out / "landscape.json").read_text())["rows"]
    assert [(r["model"], r["checkpoint"]) for r in summary] == [("resnet20", str(runs[0])), ("plain20", str(runs[1]))]
    capsys.readouterr()
    assert main(["landscape", "--checkpoint", str(runs[0]), str(runs[2]), "--out", str(out)]) == 2
    assert "the checkpoints were trained on different data (digits, synthetic)" in capsys.readouterr().err
    assert main(["landscape", "--checkpoint", str(runs[0]), str(runs[0]), "--out", str(out)]) == 2
    assert "the checkpoints hold the same model more than once (resnet20, resnet20)" in capsys.readouterr().err


def test_running_statistics_are_estimated_on_the_given_images():
    model = models.get("resnet20", num_classes=10, in_channels=1, seed=0)
    images, _ = _digits_like(16)
    stem = model.conv1(mr.tensor(images)).numpy()
    sharpness.estimate_running_statistics(model, images)
    np.testing.assert_allclose(model.bn1.running_mean.numpy(), stem.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.bn1.running_var.numpy(), stem.var(axis=(0, 2, 3), ddof=1), rtol=1e-4)
    assert not model.training and model.bn1.momentum == 0.1


def test_sharpness_message_compares_plain_with_residual_and_depth():
    rows = [{"model": m, "state": s, "lambda_max": value, "trace": 10 * value}
            for m, s, value in (("plain20", "trained", 40.0), ("resnet20", "trained", 10.0), ("plain56", "trained", 90.0),
                                ("resnet56", "trained", 11.0), ("plain20", "init", 5.0), ("resnet20", "init", 5.5),
                                ("plain56", "init", 1.0), ("resnet56", "init", 9.0))]
    lines = sharpness.conclusion(rows)
    assert lines[0] == ("trained, 20 layers: plain-20 is sharper than ResNet-20 (lambda_max 40 vs 10, x4; trace 400 vs "
                        "100)")
    assert lines[2].startswith("init, 20 layers: plain-20 is about as sharp as ResNet-20")
    assert lines[3].startswith("init, 56 layers: plain-56 is flatter than ResNet-56")
    assert lines[4] == "trained, depth: plain-56 is sharper than plain-20 (lambda_max x2.2)"
    assert lines[5] == "trained, depth: ResNet-56 is about as sharp as ResNet-20 (lambda_max x1.1)"


def test_sharpness_measures_a_float64_copy_and_leaves_the_model_alone():
    model = models.get("resnet20", num_classes=10, in_channels=1, seed=0)
    images, labels = _digits_like(4)
    sharpness.estimate_running_statistics(model, images)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    config = sharpness.SharpnessConfig(steps=4, probes=2)
    row = sharpness.measure(model, images, labels, config, np.random.default_rng(0))
    assert row["lambda_max"] > 0 > row["lambda_min"] and row["loss"] == pytest.approx(
        landscape.evaluation_loss(model, images, labels), rel=1e-5)
    assert math.isfinite(row["trace"]) and row["trace_error"] > 0
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])
    assert model.conv1.weight.dtype == np.float32


def _network_and_parts(batch_norm):
    model = models.get("resnet20", num_classes=10, in_channels=1, seed=0).double()
    if not batch_norm:
        joins.without_batch_norm(model)
    images, labels = _digits_like(6)
    return model, joins.join_gradients(model, images.astype(np.float64), labels)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_the_join_split_sums_to_the_gradient_exactly(batch_norm):
    model, parts = _network_and_parts(batch_norm)
    assert len(parts) == 9
    for total, branch, shortcut in parts:
        np.testing.assert_array_equal(total, branch + shortcut)
        assert np.abs(branch).max() > 0 and np.abs(shortcut).max() > 0


def test_the_shortcut_part_is_the_next_joins_gradient_through_the_relu_and_the_input_gradient_is_unchanged():
    """For an identity shortcut, dL/dx through S is dL/dy masked by y > 0 (y = the block's output, the next
    block's input); and splitting changes nothing about dL/dx itself."""
    model, parts = _network_and_parts(True)
    images, labels = _digits_like(6)
    record = []
    with joins.split_joins(model, record):
        model.train()
        mr.F.cross_entropy(model(mr.tensor(images.astype(np.float64))), labels).backward()
    outputs = [x.numpy() for x, _, _ in record]
    for k in (0, 1, 2, 4, 5, 7):  # blocks whose shortcut is the identity and whose output feeds the next block
        np.testing.assert_array_equal(parts[k][2], np.where(outputs[k + 1] > 0, parts[k + 1][0], 0))
    plain_model = models.get("resnet20", num_classes=10, in_channels=1, seed=0).double().train()
    x = mr.tensor(images.astype(np.float64), requires_grad=True)
    seen = []
    hook = plain_model.layer1[0].register_forward_hook(lambda m, inputs, output: seen.append(inputs[0]) or
                                                      inputs[0].retain_grad())
    mr.F.cross_entropy(plain_model(x), labels).backward()
    hook.remove()
    np.testing.assert_allclose(seen[0].grad.numpy(), parts[0][0], rtol=1e-9, atol=1e-12 * np.abs(parts[0][0]).max())


def test_join_gradients_leave_running_statistics_and_blocks_as_they_were():
    model = models.get("resnet20", num_classes=10, in_channels=1, seed=0)
    images, labels = _digits_like(6)
    before = {k: v.numpy().copy() for k, v in model.named_buffers()}
    blocks = [block for _, _, block in joins.blocks_of(model)]
    joins.join_gradients(model, images, labels)
    for key, value in model.named_buffers():
        np.testing.assert_array_equal(value.numpy(), before[key])
    assert [block for _, _, block in joins.blocks_of(model)] == blocks
    assert not any(isinstance(m, mr.nn.BatchNorm2d) for m in joins.without_batch_norm(model).modules())


def test_joins_message_counts_where_the_shortcut_dominates():
    rows = [{"model": "resnet20", "batch_norm": True, "state": "trained", "block": k, "ratio": ratio,
             "cosine": 0.1, "total_norm": norm} for k, (ratio, norm) in enumerate(((0.5, 8.0), (2.0, 4.0), (0.25, 2.0)), 1)]
    (line,) = joins.conclusion(rows)
    assert line == ("ResNet-20 + BN, trained: the shortcut part is the larger at 2 of 3 joins (median ratio "
                    "branch/shortcut x0.5, median cosine 0.10); from the last block to the first ||dL/dx|| changes "
                    "x4 (x2 per block)")


def test_joins_message_names_a_dead_network_instead_of_dividing_by_zero():
    rows = [{"model": "resnet56", "batch_norm": False, "state": "trained", "block": k, "ratio": float("nan"),
             "cosine": float("nan"), "total_norm": norm} for k, norm in ((1, 0.0), (2, 0.0), (3, 1.0))]
    assert joins.conclusion(rows) == ["ResNet-56 no BN, trained: dL/dx is exactly 0 at 2 of 3 blocks: no gradient "
                                      "reaches them (the network has died: its loss no longer depends on those blocks)"]
    assert joins.ratio(0.0, 0.0) != joins.ratio(0.0, 0.0) and joins.ratio(1.0, 0.0) == float("inf")
    assert joins.ratio(3.0, 2.0) == 1.5
    assert "to inf/NaN at block 1" in joins.summary_line("ResNet-56 no BN", "trained", rows)


@pytest.mark.parametrize("argv, name", [
    (["sharpness", "--depths", "20", "--iterations", "2", "--samples", "4", "--steps", "3", "--probes", "2"],
     "sharpness"),
    (["joins", "--depths", "20", "--iterations", "2", "--samples", "8"], "joins"),
])
def test_sharpness_and_joins_commands_write_numbers_a_figure_and_their_message(argv, name, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    message = out.split("what this run shows:\n")[1].split(f"{name}: done in")[0]
    assert message == "".join(f"  {line}\n" for line in saved["conclusion"])
    assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}.csv").exists()
    if name == "sharpness":
        assert [(r["model"], r["state"]) for r in saved["rows"]] == [
            ("plain20", "init"), ("plain20", "trained"), ("resnet20", "init"), ("resnet20", "trained")]
    else:
        assert len(saved["rows"]) == 4 * 9  # with and without BN, init and trained, 9 blocks
        assert {(r["batch_norm"], r["state"]) for r in saved["rows"]} == {
            (True, "init"), (True, "trained"), (False, "init"), (False, "trained")}


def test_the_shared_training_settings_make_every_commands_flags():
    for config in (landscape.LandscapeConfig, sharpness.SharpnessConfig, joins.JoinsConfig):
        assert issubclass(config, ShortTraining)
    assert sharpness.SharpnessConfig().samples == 32 and landscape.LandscapeConfig().samples == 128
    assert joins.JoinsConfig().zero_init_residual is False and landscape.LandscapeConfig().zero_init_residual is True
