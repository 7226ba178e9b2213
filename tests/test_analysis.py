"""The lab: facts the mathematics guarantees, checked on small networks with margins far outside noise."""
import json
import math

import numpy as np
import pytest

import minires as mr
from minires.analysis import explain, gradflow, lesion, shattered, variance
from minires.analysis.labnet import LabMLP, LabNet, kaiming_std
from minires.cli import main

KAIMING = kaiming_std(16 * 3 * 3)  # the blocks' convolutions: 16 channels in, 3x3


def batch(n=16, size=8):
    rng = np.random.default_rng(0)
    return mr.tensor(rng.standard_normal((n, 1, size, size)).astype(np.float32)), rng.integers(0, 10, n)


def first_over_last_activation_gradient(residual, batch_norm, std, blocks=9):
    model = LabNet(blocks, residual, batch_norm, init_scheme="normal", std=std, seed=1)
    measured = gradflow.layer_gradients(model, *batch())
    return measured[1][2] / measured[-2][2]  # ||dL/dh|| at the first block's conv over the last block's conv


def test_below_kaiming_plain_gradients_vanish_toward_the_input_while_residual_bn_stays_healthy():
    plain = first_over_last_activation_gradient(False, False, 0.5 * KAIMING)
    residual = first_over_last_activation_gradient(True, True, 0.5 * KAIMING)
    assert plain < 1e-3  # 18 convolutions each losing about half: orders of magnitude
    assert 0.1 < residual < 10


def test_above_kaiming_plain_gradients_explode_toward_the_input():
    assert first_over_last_activation_gradient(False, False, 2.0 * KAIMING) > 1e3


def test_gradflow_keeps_non_finite_norms_instead_of_crashing():
    model = LabNet(8, residual=False, batch_norm=False, init_scheme="normal", std=500.0, seed=0)  # overflows
    measured = gradflow.layer_gradients(model, *batch())
    assert any(not math.isfinite(w) for _, w, _ in measured)


def block_variances(residual, batch_norm, blocks=20):
    model = LabNet(blocks, residual, batch_norm, seed=2)
    return variance.block_variances(model, batch(64)[0])


def test_without_bn_residual_variance_grows_exponentially_with_bn_about_linearly():
    without = block_variances(True, False)
    with_bn = block_variances(True, True)
    assert without[-1] / without[1] > 1e4  # roughly doubling per block
    assert all(b > a for a, b in zip(without[1:], without[2:]))
    assert 2 < with_bn[-1] / with_bn[1] < 2 * len(with_bn)  # about one unit more per block


def lag1(residual, blocks):
    model = LabMLP(blocks, residual, batch_norm=True, width=100, seed=3)
    _, gradient = shattered.input_gradients(model, 256)
    return shattered.autocorrelation(gradient)[1]


def test_plain_input_gradients_decorrelate_with_depth_much_faster_than_residual_ones():
    assert lag1(False, 1) > 0.9 and lag1(True, 1) > 0.9
    plain_deep, residual_deep = lag1(False, 12), lag1(True, 12)
    assert plain_deep < 0.2 and residual_deep > 0.35 and residual_deep - plain_deep > 0.3


def test_autocorrelation_of_known_signals():
    t = np.linspace(0, 1, 200)
    assert shattered.autocorrelation(np.sin(2 * np.pi * t))[1] > 0.99
    noise = np.random.default_rng(0).standard_normal(5000)
    assert abs(shattered.autocorrelation(noise)[1]) < 0.05


def test_explain_split_sums_to_the_full_gradient(tmp_path):
    result = explain.run(explain.ExplainConfig(), str(tmp_path))
    np.testing.assert_allclose(result["through_branch"] + result["through_shortcut"], result["full"], atol=1e-12)
    assert np.abs(result["through_branch"]).sum() > 0 and np.abs(result["through_shortcut"]).sum() > 0
    assert result["split"]["gradcheck"]["passed"]
    assert json.loads((tmp_path / "explain.json").read_text())["split"]["split_max_error"] < 1e-12


def test_routed_joins_split_a_residual_gradient_exactly():
    """Backprop through the branch only plus through the shortcut only = the full gradient (one block)."""
    model = mr.models.cifar_resnet(8, num_classes=3, seed=0).double().eval()
    images = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    labels = np.array([0, 2])
    (full,) = [r["gradient_per_path"] for r in lesion.path_gradients(model, images, labels, 1,
                                                                       np.random.default_rng(0), "cpu")][:1]
    paths = lesion.path_gradients(model, images, labels, 1, np.random.default_rng(0), "cpu")
    n = 3
    assert [r["paths"] for r in paths] == [math.comb(n, k) for k in range(n + 1)]
    assert sum(r["fraction_of_paths"] for r in paths) == pytest.approx(1.0)
    assert full > 0


def test_a_lesioned_block_is_its_shortcut():
    model = mr.models.resnet20(seed=0).eval()
    block = model.layer2[0]  # option A: subsample + zero channels
    x = mr.tensor(np.abs(np.random.default_rng(0).standard_normal((1, 16, 8, 8))).astype(np.float32))
    np.testing.assert_array_equal(lesion.Lesioned(block)(x).numpy(), mr.F.shortcut_a(x, 32, 2).numpy())
    plain = mr.models.plain20(seed=0).layer1[1]
    assert lesion.Lesioned(plain)(x) is x


@pytest.mark.parametrize("argv", [
    ["gradflow", "--blocks", "1", "2", "--steps", "1", "--batch-size", "16"],
    ["variance", "--blocks", "3"],
    ["shattered", "--blocks", "1", "2", "--points", "32", "--width", "16"],
    ["explain"],
    ["degradation", "--models", "plain20", "plain32", "resnet20", "resnet32", "--iterations", "2", "--eval-every", "1",
     "--batch-size", "16"],
])
def test_lab_commands_write_numbers_and_figures(argv, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "done in" in out
    files = {p.name for p in tmp_path.iterdir()}
    assert f"{argv[0]}.csv" in files and f"{argv[0]}.json" in files
    assert any(name.endswith(".png") for name in files)  # explain too: the block with its two gradient paths
    message = out.split("what this run shows:\n")[1].split(f"{argv[0]}: done in")[0]
    assert message.strip() and message == "".join(f"  {line}\n" for line in
                                                  json.loads((tmp_path / f"{argv[0]}.json").read_text())["conclusion"])
    if argv[0] == "degradation":
        assert "the paper expects worse" in out and "the paper expects better" in out


@pytest.mark.slow
def test_lesion_command_trains_and_lesions(tmp_path, capsys):
    assert main(["lesion", "--data", "synthetic", "--epochs", "1", "--samples", "2", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "lesion.json").read_text())
    assert len(rows["rows"]) == 18 and len(rows["paths"]) == 10


def test_lab_rejects_bad_options(capsys):
    assert main(["gradflow", "--init", "normal", "--std", "-1", "--blocks", "1", "--steps", "0"]) == 2
    assert "positive std" in capsys.readouterr().err


def test_degradation_learning_rate_ramps_up_then_steps_down_as_he_et_al():
    from minires.analysis.degradation import DegradationConfig, learning_rate

    config = DegradationConfig(iterations=600, lr=0.05, warmup=100, warmup_lr=0.01, decay_at=(0.5, 0.75))
    assert [learning_rate(config, i) for i in (0, 50, 100, 299)] == pytest.approx([0.01, 0.03, 0.05, 0.05])
    assert learning_rate(config, 300) == pytest.approx(0.005) and learning_rate(config, 599) == pytest.approx(0.0005)


# --- the messages in words: they follow the numbers (each wording is reached by numbers that call for it) ----

def test_variance_names_the_growth_the_numbers_show():
    blocks = np.arange(41)
    assert variance.growth_shape(list(2.0 ** blocks))["kind"] == "exponential"
    linear = variance.growth_shape(list(0.7 + 0.5 * blocks))
    assert linear["kind"] == "linear" and linear["slope"] == pytest.approx(0.5) and linear["r2"] == pytest.approx(1)
    assert variance.growth_shape(list(1 + 0.1 * np.sin(blocks)))["kind"] == "flat"
    assert variance.growth_shape(list(0.9 ** blocks))["kind"] == "shrinking"
    assert variance.growth_shape([1.0, 2.0, float("inf"), 3.0])["kind"] == "non-finite"
    rows = [{"architecture": "residual no BN", "block": i, "variance": 2.0 ** i} for i in range(11)]
    (line,) = variance.conclusion(rows, variance.VarianceConfig(blocks=10))
    assert "x5.1e+02" in line and "x2 per block): exponential" in line


def test_gradflow_says_where_the_gradient_goes_and_why_a_net_diverged():
    config = gradflow.GradflowConfig(blocks=(1, 27), steps=10)
    headline = [{"architecture": "plain no BN", "layers": 56, "stage": "init", "first_over_last": 0.012},
                {"architecture": "residual + BN", "layers": 56, "stage": "init", "first_over_last": 3.1},
                {"architecture": "plain + BN", "layers": 56, "stage": "init", "first_over_last": 650.0},
                {"architecture": "plain no BN", "layers": 4, "stage": "init", "first_over_last": 1e-9}]
    seen = [{"architecture": "residual no BN", "layers": 56, "blocks": 27, "variance_growth": 2.0 ** 28,
             "diverged_at": 2},
            {"architecture": "residual + BN", "layers": 56, "blocks": 27, "variance_growth": 30.0, "diverged_at": None}]
    lines = gradflow.conclusion(headline, seen, config)
    assert len(lines) == 4  # the deepest depth at init for each family, and the one that diverged
    assert "plain no BN, 56 layers at init: ||dL/dh|| at the first layer is x0.012 that at the last: the gradient " \
           "vanishes toward the input" == lines[0]
    assert lines[1].endswith("stays within a factor 10 across the depth")
    assert lines[2].endswith("grows toward the input (exploding)")
    assert lines[3].startswith("residual no BN, 56 layers: the training loss became NaN/inf at step 2 of 10; at init "
                               "the forward variance grew x2.7e+08 over 27 blocks (x2 per block: the join adds")


def test_shattered_compares_plain_and_residual_depth_by_depth():
    rows = [{"architecture": a, "layers": n, "lag1_autocorrelation": r}
            for a, n, r in [("plain", 4, 0.99), ("residual", 4, 0.99), ("plain", 26, -0.08), ("residual", 26, 0.5)]]
    lines = shattered.conclusion(rows)
    assert "4 layers 0.99 vs 0.99, 26 layers -0.08 vs 0.50" in lines[0]
    assert lines[1].startswith("at 26 layers the plain net's gradient is white noise (-0.08) while the residual net's "
                               "stays correlated (brown noise) (0.50)")
    same = [dict(r, lag1_autocorrelation=0.1) for r in rows]
    assert "is no more correlated than the plain net's" in shattered.conclusion(same)[1]
    assert "shortcuts keep" not in shattered.conclusion(same)[1]


def test_lesion_tells_collapse_from_survival():
    rows = ([{"model": "resnet20", "baseline_accuracy": 0.95, "block": b, "accuracy": a} for b, a in
             [(1, 0.55), (2, 0.9), (3, 0.92)]] +
            [{"model": "plain20", "baseline_accuracy": 0.8, "block": b, "accuracy": 0.12} for b in (1, 2, 3)])
    paths = [{"path_length": k, "total_gradient": t} for k, t in enumerate([1.0, 3.0, 2.0, 0.5])]
    lines = lesion.conclusion(rows, paths, classes=10)
    assert lines[0] == ("resnet20: 95.0% intact; one block deleted leaves 79.0% on average (worst 55.0%, block 1; "
                        "chance 10.0%): most of it survives: the other paths still reach the output")
    assert lines[1].endswith("it collapses toward chance: its one path runs through every block")
    assert "peaks at length 1 of 3" in lines[2] and "carry 61.5% of it: the short paths do most" in lines[2]


def test_explain_message_holds_the_measured_split(tmp_path):
    result = explain.run(explain.ExplainConfig(seed=1), str(tmp_path))
    norms = result["split"]["norms"]
    text = "\n".join(result["conclusion"])
    assert f"||{norms['through_branch']:.4g}|| + ||{norms['through_shortcut']:.4g}|| gives ||{norms['full']:.4g}||" in text
    cosine = float((result["through_branch"] * result["through_shortcut"]).sum()
                   / np.linalg.norm(result["through_branch"]) / np.linalg.norm(result["through_shortcut"]))
    assert f"cosine {cosine:.2f}" in text and text.endswith("both checks pass")
    assert np.linalg.norm(result["full"]) ** 2 == pytest.approx(
        norms["through_branch"] ** 2 + norms["through_shortcut"] ** 2 + 2 * cosine * norms["through_branch"]
        * norms["through_shortcut"])  # the law of cosines: the norms add as vectors do
