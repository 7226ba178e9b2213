"""The kernel registry: numba when it imports, the reference when forced, GPU kernels for CuPy arrays."""
import os

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


@pytest.mark.skipif(not kernels.numba_available() or os.environ.get("NUMBA_DISABLE_JIT") == "1",
                    reason="needs numba's JIT")
def test_kernels_are_compiled_for_all_cores_cached_and_exact_unless_asked():
    """The JIT's configuration (which mutation testing, run with the JIT off, cannot see): every kernel is a
    parallel, disk-cached dispatcher; only the batch-norm reductions may reassociate their sums; helpers
    called from kernels are compiled too; the workqueue threading layer is chosen when the user chose none."""
    import numba

    from minires.kernels import batchnorm, im2col, pool, residual

    reassociating = {batchnorm._forward_train_jit, batchnorm._backward_jit}
    jitted = [value for module in (batchnorm, im2col, pool, residual) for name, value in vars(module).items()
              if name.endswith("_jit") and name != "parallel_jit" and not name.startswith("serial")]
    assert len(jitted) >= 10
    for dispatcher in jitted:
        assert dispatcher.targetoptions["parallel"] is True
        assert type(dispatcher._cache).__name__ == "FunctionCache"
        assert dispatcher.targetoptions["fastmath"] == ({"reassoc"} if dispatcher in reassociating else False)
    assert type(im2col._valid_range).__name__ == "CPUDispatcher"
    if "NUMBA_THREADING_LAYER" not in os.environ:
        assert numba.config.THREADING_LAYER == "workqueue"
