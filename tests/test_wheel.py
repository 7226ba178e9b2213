"""The release as a user gets it: build the wheel, install it into a fresh virtual environment, and use it
from a directory outside the repository (an editable install would hide a package left out of the wheel).

Slow (a venv and the dependencies' install, numba's cold compile): deselected by default, run by .ci/run
as ``python -m pytest -m slow tests/test_wheel.py``.
"""
import pathlib
import shutil
import subprocess
import sys
import venv
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def subpackages():
    """Every package in the source tree under its import name (kernels/ is installed as minires.kernels)."""
    names = []
    for init in sorted(ROOT.glob("minires/**/__init__.py")) + sorted(ROOT.glob("kernels/**/__init__.py")):
        parts = init.parent.relative_to(ROOT).parts
        names.append(".".join(("minires",) + parts if parts[0] == "kernels" else parts))
    return names


def run(command, cwd, timeout=900):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    print(f"$ {' '.join(map(str, command))}\n{result.stdout}{result.stderr}")
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_repository(tmp_path):
    dist = tmp_path / "dist"
    build = ROOT / "build"  # setuptools builds in the source tree: a second copy of every module, left behind
    build_was_there = build.exists()
    try:
        run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--wheel-dir", str(dist), "--quiet"],
            cwd=tmp_path)
    finally:
        if not build_was_there:
            shutil.rmtree(build, ignore_errors=True)
    wheel = next(dist.glob("minires_nn-*.whl"))
    contents = zipfile.ZipFile(wheel).namelist()
    assert any(name.endswith("licenses/LICENSE") for name in contents), "LICENSE is not in the wheel"
    for package in subpackages():
        assert package.replace(".", "/") + "/__init__.py" in contents, f"{package} is not in the wheel"
    for source in (ROOT / "kernels" / "cuda").glob("*.cu"):  # NVRTC compiles them at run time
        assert f"minires/kernels/cuda/{source.name}" in contents, f"{source.name} is not in the wheel"

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", f"{wheel}[data]"], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    imports = "; ".join(f"import {name}" for name in subpackages())
    located = run([python, "-c", f"{imports}; import minires; print(minires.__file__)"], cwd=elsewhere)
    assert str(environment) in located and str(ROOT) not in located, "minires was not imported from the wheel"

    minires = environment / "bin" / "minires"
    assert "gradcheck" in run([minires, "--help"], cwd=elsewhere)
    assert " 0 failed" in run([minires, "gradcheck", "--all"], cwd=elsewhere)
    trained = run([minires, "train", "--epochs", "1", "--quiet", "--out", "run"], cwd=elsewhere)
    assert "done: 1 epochs" in trained
    assert (elsewhere / "run" / "checkpoint.safetensors").is_file()
