"""The kernel registry: numba when it imports, the reference when forced, GPU kernels for CuPy arrays."""
import numpy as np
import pytest

from minires import kernels


def _reference(x):
    return "reference"


def _numba(x):
    return "numba"


@pytest.fixture
def toy_kernel():
    kernels.register("toy", reference=_reference, numba=_numba)
    yield "toy"
    kernels.registry._registry.pop("toy")


def test_numba_is_picked_when_it_imports(toy_kernel, monkeypatch):
    monkeypatch.delenv("MINIRES_KERNELS", raising=False)
    expected = "numba" if kernels.numba_available() else "reference"
    assert kernels.pick(toy_kernel, np)(None) == expected


def test_the_environment_forces_the_reference(toy_kernel, monkeypatch):
    monkeypatch.setenv("MINIRES_KERNELS", "reference")
    assert kernels.pick(toy_kernel, np)(None) == "reference"


def test_a_bad_flavour_is_refused(toy_kernel, monkeypatch):
    monkeypatch.setenv("MINIRES_KERNELS", "fortran")
    with pytest.raises(ValueError, match="MINIRES_KERNELS must be one of"):
        kernels.pick(toy_kernel, np)


def test_an_unknown_kernel_names_the_registered_ones(toy_kernel):
    with pytest.raises(KeyError, match="toy"):
        kernels.pick("im2colx", np)
