"""The kernel table: numba when it imports, the reference when forced, GPU kernels for CuPy arrays; kernels
entered by their names (NAME_reference, NAME_numba, the CUDA twin's NAME)."""
import os
import types

import numpy as np
import pytest

from minires import kernels


def _reference(x):
    return "reference"


def _numba(x):
    return "numba"


def _enter(name, cuda=None, numba=_numba):
    """A family module with one kernel ``name`` (and its CUDA twin when ``cuda``), collected by convention."""
    family = types.ModuleType("toy_family")
    setattr(family, name + "_reference", _reference)
    setattr(family, name + "_numba", numba)
    setattr(family, "_helper_reference", _reference)  # private: not a kernel
    kernels.registry.collect(family, None if cuda is None else types.SimpleNamespace(**{name: cuda}))


@pytest.fixture
def toy_kernel():
    _enter("toy")
    yield "toy"
    delattr(kernels.table, "toy")


def test_the_convention_collects_the_three_versions_and_skips_private_names(toy_kernel):
    assert kernels.implementation("toy", "reference") is _reference
    assert kernels.implementation("toy", "numba") is _numba
    assert kernels.implementation("toy", "cuda") is None
    assert "_helper" not in kernels.registered() and "toy" in kernels.registered()


def test_two_families_defining_one_kernel_differently_are_refused(toy_kernel):
    with pytest.raises(RuntimeError, match=r"^kernel 'toy' is defined by two families \(toy_family\)$"):
        _enter("toy", numba=None)
    _enter("toy")  # the same versions again (a family importing another's module) are fine


def test_numba_is_picked_when_it_imports(toy_kernel, monkeypatch):
    monkeypatch.delenv("MINIRES_KERNELS", raising=False)
    expected = "numba" if kernels.numba_available() else "reference"
    assert kernels.pick(toy_kernel, np)(None) == expected


def test_the_environment_forces_the_reference(toy_kernel, monkeypatch):
    monkeypatch.setenv("MINIRES_KERNELS", "reference")
    assert kernels.pick(toy_kernel, np)(None) == "reference"


def test_a_bad_flavour_is_refused(toy_kernel, monkeypatch):
    monkeypatch.setenv("MINIRES_KERNELS", "fortran")
    with pytest.raises(ValueError, match=r"^MINIRES_KERNELS must be one of \('reference', 'numba'\), got 'fortran'$"):
        kernels.pick(toy_kernel, np)


def test_an_unknown_kernel_names_the_registered_ones(toy_kernel):
    with pytest.raises(KeyError, match="toy"):
        kernels.pick("im2colx", np)


def _cuda(x):
    return "cuda"


class _CupyModule:
    __name__ = "cupy"


def test_cupy_arrays_get_the_cuda_slot_and_the_reference_when_it_is_empty(toy_kernel):
    assert kernels.pick(toy_kernel, _CupyModule())(None) == "reference"
    _enter("toy_gpu", cuda=_cuda)
    try:
        assert kernels.pick("toy_gpu", _CupyModule())(None) == "cuda"
        assert kernels.pick("toy_gpu", np)(None) != "cuda"
    finally:
        delattr(kernels.table, "toy_gpu")


def test_the_cpu_flavour_without_any_choice_is_numba_when_it_imports(monkeypatch):
    monkeypatch.delenv("MINIRES_KERNELS", raising=False)
    assert kernels.cpu_flavour() == ("numba" if kernels.numba_available() else "reference")
    monkeypatch.setattr(kernels, "numba_available", lambda: False)
    assert kernels.cpu_flavour() == "reference"
    monkeypatch.setenv("MINIRES_KERNELS", "numba")
    with pytest.raises(ValueError, match=r"^MINIRES_KERNELS=numba but numba cannot be imported$"):
        kernels.cpu_flavour()
    with pytest.raises(ValueError, match=r"^the numba kernel flavour was asked for but numba cannot be imported$"):
        with kernels.using("numba"):
            pass


@pytest.mark.parametrize("flavour", ["reference", "numba"])
def test_using_forces_a_flavour_over_the_environment_and_restores_it(toy_kernel, monkeypatch, flavour):
    if flavour == "numba" and not kernels.numba_available():
        pytest.skip("numba is not installed")
    other = "numba" if flavour == "reference" else "reference"
    monkeypatch.setenv("MINIRES_KERNELS", other if kernels.numba_available() else "reference")
    before = kernels.cpu_flavour()
    with kernels.using(flavour):
        assert kernels.pick(toy_kernel, np)(None) == flavour
    assert kernels.cpu_flavour() == before


def test_using_refuses_an_unknown_flavour():
    with pytest.raises(ValueError, match=r"^kernel flavour must be one of \('reference', 'numba', 'cuda'\), got 'opencl'$"):
        with kernels.using("opencl"):
            pass


def test_the_cuda_flavour_runs_the_cuda_slot_on_any_array_and_the_reference_where_it_is_empty(toy_kernel):
    _enter("toy_gpu", cuda=_cuda)
    try:
        with kernels.using("cuda"):
            assert kernels.pick("toy_gpu", np)(None) == "cuda"
            assert kernels.pick(toy_kernel, np)(None) == "reference"
    finally:
        delattr(kernels.table, "toy_gpu")


def test_an_unknown_kernel_message_lists_the_registered_ones():
    with pytest.raises(KeyError) as info:
        kernels.pick("im2colx", np)
    assert str(info.value) == f"no kernel named 'im2colx'; kernels: {', '.join(kernels.registered())}"


@pytest.mark.skipif(not kernels.numba_available() or os.environ.get("NUMBA_DISABLE_JIT") == "1",
                    reason="needs numba's JIT")
def test_kernels_are_compiled_for_all_cores_cached_and_exact_unless_asked():
    """The JIT's configuration (which mutation testing, run with the JIT off, cannot see): every kernel is a
    parallel, disk-cached dispatcher; only the batch-norm reductions may reassociate their sums; helpers
    called from kernels are compiled too; OpenMP is the preferred threading layer when the user chose none."""
    import numba

    from minires.kernels import (batchnorm, batchnorm_channels_last, batchnorm_relu_channels_last, im2col, pool,
                                 residual, sgd)
    from minires.kernels.direct import fast as direct_conv

    reassociating = {batchnorm.batchnorm_forward_train_numba.__wrapped__, batchnorm.batchnorm_backward_numba,
                     batchnorm.batchnorm_backward_eval_numba}
    # (a training forward's numba version is the compiled loops wrapped to update the running statistics;
    # Python around compiled kernels: relu_backward_numba calls residual_add_backward_numba, conv2d's numba
    # versions im2col_numba and col2im_numba)
    drivers = {"relu_backward_numba", "conv2d_forward_numba", "conv2d_backward_numba"}
    jitted = [value if hasattr(value, "targetoptions") else value.__wrapped__ for module in (batchnorm, im2col, pool, residual, sgd)
              for name, value in vars(module).items() if name.endswith("_numba") and name not in drivers]
    jitted += [batchnorm_channels_last.column_sums, batchnorm_channels_last.scale_shift_rows,
               batchnorm_channels_last.affine_gradient, batchnorm_relu_channels_last.normalise_add_relu_rows,
               batchnorm_relu_channels_last.masked_gradient_sums, batchnorm_relu_channels_last.masked_gradient,
               batchnorm_relu_channels_last.masked_gradient_eval, direct_conv.kernel_weight,
               direct_conv.summed_weight_grad]  # the parallel passes whose drivers are plain Python
    assert len(jitted) >= 20
    for dispatcher in jitted:
        assert dispatcher.targetoptions["parallel"] is True
        assert type(dispatcher._cache).__name__ == "FunctionCache"
        assert dispatcher.targetoptions["fastmath"] == ({"reassoc"} if dispatcher in reassociating else False)
    assert type(im2col._valid_range).__name__ == "CPUDispatcher"
    assert type(sgd.sgd_rule_compiled).__name__ == "CPUDispatcher"
    assert type(im2col.conv_out_size).__name__ == "CPUDispatcher"
    assert type(residual.shortcut_a_channels).__name__ == "CPUDispatcher"
    assert type(batchnorm_channels_last.chunk_bounds).__name__ == "CPUDispatcher"
    if "NUMBA_THREADING_LAYER" not in os.environ:
        assert numba.config.THREADING_LAYER == "default"
        assert numba.config.THREADING_LAYER_PRIORITY[0] == "omp"
