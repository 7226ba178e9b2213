"""The command line: --help, --version, and `minires gradcheck`."""
import subprocess
import sys

import numpy as np

import minires
from minires import op_catalog
from minires.cli import main


def test_version_and_help_run_as_a_module_and_a_console_script():
    out = subprocess.run([sys.executable, "-m", "minires", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"minires {minires.__version__}"
    out = subprocess.run(["minires", "--help"], capture_output=True, text=True, check=True)
    assert "gradcheck" in out.stdout


def test_gradcheck_all_passes_and_prints_a_table(capsys):
    assert main(["gradcheck", "--all"]) == 0
    out = capsys.readouterr().out
    for name in op_catalog.names():
        assert f"\n{name} " in out
    assert f"{len(op_catalog.names())} passed, 0 failed" in out


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
    out = capsys.readouterr().out
    assert "unknown op 'convolve'" in out and "cross_entropy" in out


def test_gradcheck_rejects_a_shape_the_op_cannot_take(capsys):
    assert main(["gradcheck", "cross_entropy", "--shape", "2,3,4"]) == 1
    assert "needs rank 2..2" in capsys.readouterr().out


def test_catalog_draws_are_reproducible():
    case = op_catalog.get("pad")
    (a,), pa = case.draw(np.random.default_rng(5), (2, 3))
    (b,), pb = case.draw(np.random.default_rng(5), (2, 3))
    assert pa == pb and np.array_equal(a, b)
