"""PyTorch programs run on minires with only their imports swapped (tests/torch_programs/README.md).

Each program runs twice — under torch, then with its import lines rewritten to minires — and what its
``main(workdir)`` returns is compared: float64 programs to 1e-9 (loss curves, accuracies, final weights),
float32 ones to 1e-4 (forward values and the first losses). The swap is checked to touch import lines only.
"""
import pathlib
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

PROGRAMS = pathlib.Path(__file__).parent / "torch_programs"
SWAPS = [  # (torch import, minires import): whole lines, nothing else is rewritten
    (r"^import torch$", "import minires as torch"),
    (r"^import torch\.nn as nn$", "import minires.nn as nn"),
    (r"^import torch\.nn\.functional as F$", "import minires.nn.functional as F"),
    (r"^import torch\.optim as optim$", "import minires.optim as optim"),
    (r"^from torch import nn$", "from minires import nn"),
    (r"^from torch\.utils\.data import (.*)$", r"from minires.utils.data import \1"),
    (r"^from torch\.autograd import (.*)$", r"from minires.autograd import \1"),
]


def swapped(source):
    lines = []
    for line in source.splitlines():
        for pattern, replacement in SWAPS:
            if re.match(pattern, line):
                line = re.sub(pattern, replacement, line)
                break
        lines.append(line)
    return "\n".join(lines) + "\n"


def run(source, name, workdir):
    namespace = {"__name__": f"torch_program_{name}"}
    exec(compile(source, f"{name}.py", "exec"), namespace)
    return namespace["main"](str(workdir))


def assert_same(ours, theirs, tolerance, where="result"):
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], tolerance, f"{where}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, tolerance, f"{where}[{i}]")
    elif isinstance(theirs, str):
        assert ours == theirs, where
    else:
        ours, theirs = np.asarray(ours), np.asarray(theirs)
        assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} vs {theirs.shape}"
        np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=tolerance, err_msg=where)


@pytest.mark.parametrize("name", sorted(p.stem for p in PROGRAMS.glob("*.py") if p.stem != "__init__"))
def test_a_pytorch_program_runs_on_minires_with_only_its_imports_swapped(name, tmp_path):
    source = (PROGRAMS / f"{name}.py").read_text()
    ported = swapped(source)
    changed = [(a, b) for a, b in zip(source.splitlines(), ported.splitlines()) if a != b]
    assert changed and all(re.match(r"^(import|from) ", a) for a, _ in changed), changed
    (tmp_path / "torch").mkdir()
    (tmp_path / "minires").mkdir()
    theirs = run(source, name, tmp_path / "torch")
    ours = run(ported, name, tmp_path / "minires")
    if theirs["dtype"] == "float64":
        assert_same(ours, theirs, 1e-9)
    else:  # float32: forward values and the first steps, where rounding has not compounded
        first = {k: theirs[k] for k in theirs if k in ("first_logits", "n_params", "dtype")}
        assert_same({k: ours[k] for k in first}, first, 1e-4)
        assert_same(ours["losses"][:1], theirs["losses"][:1], 1e-4)
        assert_same(ours["losses"], theirs["losses"], 1e-3)
        assert_same(ours["probabilities"], theirs["probabilities"], 1e-3)
