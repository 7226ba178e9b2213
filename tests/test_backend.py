"""Array backends and devices."""
import subprocess
import sys

import numpy as np
import pytest

import minires as mr
from minires import backend
from minires.errors import DeviceError


def test_numpy_arrays_belong_to_numpy_and_the_cpu():
    a = np.ones(3)
    assert backend.get_array_module(a) is np
    assert backend.device_of(a) == "cpu"
    assert backend.to_device(a, "cpu") is a
    assert backend.xp_for("cpu") is np


@pytest.mark.parametrize("name, expected", [("cpu", "cpu"), ("CPU", "cpu"), ("cuda", "cuda"), ("cuda:0", "cuda")])
def test_device_names(name, expected):
    assert backend.normalize_device(name) == expected


def test_unknown_device_names_are_refused():
    with pytest.raises(DeviceError, match="'gpu'"):
        backend.normalize_device("gpu")


def test_cpu_work_never_imports_cupy():
    code = ("import sys, minires as mr; x = mr.tensor([1.0, 2.0], requires_grad=True); "
            "(x * x).sum().backward(); mr.gradcheck(mr.F.tanh, [x.numpy().astype('float64')]); "
            "print('cupy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.gpu
def test_tensors_move_to_the_gpu_and_back():
    x = mr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda"
    (y * y).sum().backward()
    assert x.grad is not None and backend.device_of(x.grad) == "cpu"
    np.testing.assert_allclose(x.grad, [2.0, 4.0, 6.0])
