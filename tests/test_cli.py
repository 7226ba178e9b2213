"""The command line: --help, --version, and `minires gradcheck`."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minires
from minires.verify import op_catalog
from minires.cli import build_parser, main


def test_version_and_help_run_as_a_module_and_a_console_script():
    out = subprocess.run([sys.executable, "-m", "minires", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"minires {minires.__version__}"
    script = os.path.join(os.path.dirname(sys.executable), "minires")  # the venv's, activated or not
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    assert "gradcheck" in out.stdout


def test_gradcheck_all_passes_and_prints_a_row_per_op_and_flavour(capsys):
    assert main(["gradcheck", "--all"]) == 0
    out = capsys.readouterr().out
    rows = 0
    for name in op_catalog.names():
        flavours = minires.kernels.FLAVOURS if op_catalog.get(name).kernels else ["-"]
        for flavour in flavours:
            assert re.search(rf"\n{name} +\([0-9, ]+\) +{flavour} ", out), (name, flavour)
            rows += 1
    assert f"{rows} passed, 0 failed" in out
    assert "reduction=none" in out and "groups>1" in out  # the draws cover the options


def test_gradcheck_torch_column_catches_a_consistently_wrong_op(capsys, monkeypatch):
    """Running variance updated with the biased variance: forward and backward stay consistent, so finite
    differences cannot see it; the comparison with torch's in-place update does."""
    from minires.functional import batchnorm

    original = batchnorm.BatchNorm.forward

    def biased_running_var(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        if running_var is not None and training:
            kept = running_var.copy()
            y = original(self, x, weight, bias, running_mean, running_var, training, momentum, eps)
            count = x.size // x.shape[1]
            running_var[...] = (running_var - (1 - momentum) * kept) * (count - 1) / count + (1 - momentum) * kept
            return y
        return original(self, x, weight, bias, running_mean, running_var, training, momentum, eps)

    monkeypatch.setattr(batchnorm.BatchNorm, "forward", biased_running_var)
    assert main(["gradcheck", "batch_norm", "--flavour", "reference"]) == 1
    out = capsys.readouterr().out
    assert "vs torch" in out and "in-place state" in out
    assert main(["gradcheck", "batch_norm", "--flavour", "reference", "--no-torch"]) == 0


def test_gradcheck_one_op_with_shape_seed_and_mode(capsys):
    assert main(["gradcheck", "softmax", "--shape", "2,7", "--seed", "4", "--mode", "directional"]) == 0
    assert "(2, 7)" in capsys.readouterr().out


def test_gradcheck_exits_1_when_an_op_fails(capsys, monkeypatch):
    broken = op_catalog.OpCase("broken", lambda x: x * x.detach(), op_catalog.get("exp").draw, (3,))
    monkeypatch.setitem(op_catalog.CASES, "broken", broken)
    assert main(["gradcheck", "broken"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_gradcheck_unknown_op_lists_the_known_ones(capsys):
    assert main(["gradcheck", "convolve"]) == 2
    captured = capsys.readouterr()
    assert "unknown op 'convolve'" in captured.err and "cross_entropy" in captured.err and not captured.out


@pytest.mark.parametrize("op, shape, message", [("conv2d", "3,4", "conv2d needs a rank-4 shape"),
                                                 ("cross_entropy", "2,3,4", "cross_entropy needs a rank-2 shape")])
def test_gradcheck_a_shape_the_op_cannot_take_is_a_usage_error(capsys, op, shape, message):
    assert main(["gradcheck", op, "--shape", shape]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "passed" not in captured.out


@pytest.mark.parametrize("argv", [["predict", "--checkpoint", "nowhere", "x.png"],
                                  ["evaluate", "--checkpoint", "nowhere"],
                                  ["convert", "nowhere.safetensors", "out.safetensors"],
                                  ["train", "--data", "cifar10:/nowhere", "--quiet"],
                                  ["parity", "--model", "resnet19"],
                                  ["gradcheck"]])
def test_every_command_reports_errors_on_stderr_in_one_line(argv, tmp_path):
    out = subprocess.run([sys.executable, "-m", "minires", *argv], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode in (1, 2) and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"minires {argv[0]}: "), out.stderr


def test_every_option_of_every_command_has_a_help_line():
    parser = build_parser()
    for name, command in parser._subparsers._group_actions[0].choices.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"minires {name} {'/'.join(action.option_strings) or action.dest} has no help"


def test_paths_expand_tilde_and_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RUNS", str(tmp_path / "runs"))
    args = build_parser().parse_args(["train", "--out", "$RUNS/a", "--resume", "~/b"])
    assert args.out == str(tmp_path / "runs" / "a") and args.resume == str(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cifar")):
        minires.data.load("cifar10:~/cifar")


@pytest.mark.parametrize("name", op_catalog.names())
def test_the_draws_of_gradcheck_all_cover_each_ops_options(name):
    case = op_catalog.get(name)
    seeds = op_catalog.covering_seeds(case)
    labels = set().union(*(case.labels(*op_catalog.draw_case(case, seed=s)) for s in seeds)) if case.labels else set()
    assert len(seeds) >= 3 and set(case.covers) <= labels


def test_catalog_draws_are_reproducible():
    case = op_catalog.get("pad")
    (a,), pa = case.draw(np.random.default_rng(5), (2, 3))
    (b,), pb = case.draw(np.random.default_rng(5), (2, 3))
    assert pa == pb and np.array_equal(a, b)


def test_gradcheck_exitfirst_stops_at_the_first_failure(capsys, monkeypatch):
    broken = op_catalog.OpCase("aaa_broken", lambda x: x * x.detach(), op_catalog.get("exp").draw, (3,))
    monkeypatch.setitem(op_catalog.CASES, "aaa_broken", broken)  # sorts first
    assert main(["gradcheck", "--all", "--exitfirst"]) == 1
    out = capsys.readouterr().out
    assert "1 failed (stopped at the first failure)" in out and "\nadd " not in out


def test_lab_flags_are_built_from_the_config_field_types(capsys):
    from minires.cli import build_parser

    args = build_parser().parse_args(["gradflow", "--std", "0.5", "--blocks", "1", "2", "--init", "normal"])
    assert args.std == 0.5 and isinstance(args.std, float)  # float | None: a float when given
    assert args.blocks == [1, 2] and args.init == "normal"
    assert build_parser().parse_args(["shattered", "--batch-norm", "false"]).batch_norm is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gradflow", "--init", "orthogonal"])  # a Literal field: the choices only
    assert "invalid choice: 'orthogonal'" in capsys.readouterr().err
