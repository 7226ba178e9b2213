"""For a GPU day (`python -m pytest -m gpu`, or benchmarks/gpu_day.sh with compute-sanitizer and the
benchmark): the CUDA kernels of kernels/cuda compiled by NVRTC through CuPy and run on the device against
the NumPy references on the same inputs (the cases of test_cuda_kernels.py, which checks the same kernels
on the CPU harness); float64 ResNet-20/56 training steps on the device against the CPU's, and forward and
gradients against torch on the same GPU with TF32 off. Skipped where CuPy sees no GPU (tests/conftest.py)."""
import numpy as np
import pytest

import test_cuda_kernels as cases
from minires import kernels

pytestmark = [pytest.mark.gpu, pytest.mark.filterwarnings("ignore::RuntimeWarning")]


def _on_device(value):
    import cupy
    if isinstance(value, np.ndarray):
        return cupy.asarray(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_on_device(v) for v in value)
    return value


def _host(result):
    """A kernel's result(s) as a tuple of host arrays (lists of them stay lists; None stays None)."""
    if isinstance(result, tuple):
        return tuple(_host_value(r) for r in result)
    return (_host_value(result),)


def _host_value(value):
    if isinstance(value, (list, tuple)):
        return [_host_value(v) for v in value]
    return None if value is None else value.get()


def _copied(value):
    """A copy of an array argument (some kernels update theirs in place), anything else as it is."""
    return value.copy() if isinstance(value, np.ndarray) else value


def _all_cases(rng, dtype):
    return (cases._residual_cases(rng, 2, 5, 7, 6, dtype, 3, 2, 2) + cases._batchnorm_cases(rng, 3, 5, 50, dtype)
            + cases._batchnorm_cases(rng, 3, 5, 50, dtype, channels_first=True)
            + cases._batchnorm_relu_cases(rng, 3, 5, 50, dtype, channels_first=True)
            + cases._pool_cases(rng, 2, 3, 9, 8, dtype, 3, 2, 1) + cases._im2col_cases(rng, 2, 3, 9, 8, dtype, 3, 2, 1, 1)
            + cases._sgd_cases(rng, 1000, dtype) + cases._many_cases(rng, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_cuda_kernel_on_the_device_equals_its_reference(dtype):
    import cupy

    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    for op, args in _all_cases(np.random.default_rng(0), dtype):
        reference_args = [[_copied(a) for a in v] if isinstance(v, list) else _copied(v) for v in args]
        ours = _host(kernels.pick(op, cupy)(*_on_device(args)))
        reference = kernels.implementation(op, "reference")(*reference_args)
        reference = reference if isinstance(reference, tuple) else (reference,)
        # (the lists of the many-array updates are checked bit for bit on the harness)
        pairs = [(mine, theirs) for mine, theirs in zip(ours, reference) if not isinstance(theirs, (list, tuple))]
        cases.assert_outputs_match(op, tuple(m for m, _ in pairs), tuple(t for _, t in pairs), tolerance)


@pytest.mark.parametrize("name", ["resnet20", "resnet56"])
def test_float64_training_steps_on_the_device_equal_the_cpu_steps(name):
    """Three SGD steps of the fused model as minires train runs it: losses, weights and running statistics."""
    from test_gpu_path import _steps, host_arrays

    rng = np.random.default_rng(0)
    images, labels = rng.standard_normal((4, 3, 8, 8)), np.array([0, 3, 3, 9])
    with kernels.using("numba" if kernels.numba_available() else "reference"):
        expected_losses, expected = _steps(name, np.float64, 3, "cpu", images, labels)
    losses, ours = _steps(name, np.float64, 3, "cuda", images, labels)
    expected, ours = host_arrays(expected), host_arrays(ours)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-9)
    for key, value in expected.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-9, atol=1e-9 * np.abs(value).max(), err_msg=key)


@pytest.mark.parametrize("name", ["resnet20", "resnet56"])
def test_the_models_on_the_device_match_torch_on_the_same_gpu(name):
    """float64 on both engines, TF32 off: logits, loss, every gradient and running statistic to 1e-9 of
    scale; then float32 logits to 1e-4 (forward values only, as the repository's float32 rule)."""
    import torch

    import minires as mr
    from minires import F, models, nn
    from minires.verify import torch_reference

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rng = np.random.default_rng(0)
    x, target = rng.standard_normal((8, 3, 32, 32)), rng.integers(0, 10, 8)
    for dtype, tolerance in ((np.float64, 1e-9), (np.float32, 1e-4)):
        model = models.get(name, num_classes=10, seed=0).astype(dtype)
        twin = torch_reference.build(name).to(getattr(torch, np.dtype(dtype).name))
        twin.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in model.state_dict().items()})
        model, twin = nn.fuse(model).to("cuda"), twin.cuda()
        logits = model(mr.Tensor(x.astype(dtype), device="cuda"))
        loss = F.cross_entropy(logits, mr.backend.to_device(target, "cuda"))
        t_logits = twin(torch.from_numpy(x.astype(dtype)).cuda())
        t_loss = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(target).cuda())
        expected = t_logits.detach().cpu().numpy()
        np.testing.assert_allclose(logits.to("cpu").numpy(), expected, rtol=tolerance,
                                   atol=tolerance * np.abs(expected).max())
        if dtype == np.float32:
            continue
        loss.backward()
        t_loss.backward()
        assert abs(loss.item() - t_loss.item()) <= 1e-9 * abs(t_loss.item())
        theirs = dict(twin.named_parameters())
        for key, p in model.named_parameters():
            value = theirs[key].grad.cpu().numpy()
            np.testing.assert_allclose(p.grad.to("cpu").numpy(), value, rtol=1e-9, atol=1e-9 * np.abs(value).max(),
                                       err_msg=key)
        buffers = dict(twin.named_buffers())
        for key, b in model.named_buffers():
            if key.endswith(("running_mean", "running_var")):
                value = buffers[key].cpu().numpy()
                np.testing.assert_allclose(mr.backend.to_numpy(b.array), value, rtol=1e-9,
                                           atol=1e-9 * np.abs(value).max(), err_msg=key)
