"""For a GPU day (`python -m pytest -m gpu`): the CUDA kernels of kernels/cuda compiled by NVRTC through
CuPy and run on the device, against the NumPy references on the same inputs (the cases of
test_cuda_kernels.py, which checks the same kernels on the CPU harness), and a float64 ResNet through them
against the numba flavour. Skipped where CuPy sees no GPU (tests/conftest.py)."""
import numpy as np
import pytest

import test_cuda_kernels as cases
from minires import kernels

pytestmark = [pytest.mark.gpu, pytest.mark.filterwarnings("ignore::RuntimeWarning")]


def _on_device(args):
    import cupy
    return tuple(cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args)


def _host(result):
    return tuple(r.get() for r in result) if isinstance(result, tuple) else (result.get(),)


def _all_cases(rng, dtype):
    return (cases._residual_cases(rng, 2, 5, 7, 6, dtype, 3, 2, 2) + cases._batchnorm_cases(rng, 3, 5, 50, dtype)
            + cases._pool_cases(rng, 2, 3, 9, 8, dtype, 3, 2, 1) + cases._im2col_cases(rng, 2, 3, 9, 8, dtype, 3, 2, 1, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_cuda_kernel_on_the_device_equals_its_reference(dtype):
    import cupy

    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    for op, args in _all_cases(np.random.default_rng(0), dtype):
        ours = _host(kernels.pick(op, cupy)(*_on_device(args)))
        reference = kernels.implementation(op, "reference")(*args)
        reference = reference if isinstance(reference, tuple) else (reference,)
        for i, (mine, theirs) in enumerate(zip(ours, reference)):
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, (op, i)
            scale = np.nanmax(np.abs(np.where(np.isinf(theirs), 0, theirs))) + 1e-30
            np.testing.assert_allclose(mine, theirs, rtol=tolerance, atol=tolerance * scale, err_msg=f"{op} {i}")


def test_a_resnet20_step_on_the_device_equals_the_numba_step():
    import minires as mr
    from minires import F, models

    with kernels.using("numba" if kernels.numba_available() else "reference"):
        expected_logits, expected = cases._network_step("resnet20", 8)
    model = models.get("resnet20", num_classes=10, seed=0).double().to("cuda")
    x = mr.tensor(np.random.default_rng(1).standard_normal((2, 3, 8, 8))).to("cuda")
    logits = model(x)
    F.cross_entropy(logits, np.arange(2)).backward()
    np.testing.assert_allclose(logits.to("cpu").numpy(), expected_logits, rtol=1e-9, atol=1e-9)
    for key, p in model.named_parameters():
        grad = p.grad.to("cpu").numpy()
        np.testing.assert_allclose(grad, expected[key], rtol=1e-9, atol=1e-9 * (np.abs(expected[key]).max() + 1e-30),
                                   err_msg=key)
