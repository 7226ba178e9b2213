"""minires' whole GPU path on the CPU: tests/cupy_on_cpu.py stands in for CuPy (its arrays are NumPy memory,
its RawModules the CUDA-on-CPU harness builds of kernels/cuda), so ``device="cuda"``, the registry's cuda
slots, the GEMM convolution, the fused batch-norm, the one-launch optimiser and the step's one read of the
device all run here, and the stand-in counts what a GPU would be asked to do."""
import shutil

import numpy as np
import pytest

import cupy_on_cpu
import minires as mr
from minires import F, backend, kernels, models, nn, optim
from minires.cli import main
from minires.training.trainer import step_report, watched_tensors

pytestmark = [pytest.mark.skipif(shutil.which("g++") is None, reason="the CUDA-on-CPU harness needs g++"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]  # the kernel cases hold NaN and inf


def _steps(name, dtype, steps, device, images, labels, before_each=None):
    """``steps`` SGD steps (momentum, Nesterov, weight decay) of a fused model as minires train runs it,
    ``before_each()`` ahead of each: (losses, the parameters and running statistics afterwards as
    (name, tensor) pairs)."""
    model = nn.fuse(models.get(name, num_classes=10, seed=0).astype(dtype)).to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)
    watched, losses = watched_tensors(model), []
    for _ in range(steps):
        if before_each is not None:
            before_each()
        targets = backend.to_device(labels, device)
        logits = model(mr.Tensor(images, device=device))
        loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(step_report(loss, logits, targets, watched)[0])
    return losses, watched


def host_arrays(named):
    return {name: backend.to_numpy(t.array) for name, t in named}


def test_a_float64_resnet20_trains_on_the_gpu_path_as_on_the_cpu():
    """Three steps: every loss, weight and running statistic equal to the CPU run's to 1e-9 of its scale."""
    rng = np.random.default_rng(0)
    images, labels = rng.standard_normal((4, 3, 8, 8)), np.array([0, 3, 3, 9])
    with kernels.using("numba" if kernels.numba_available() else "reference"):
        expected_losses, expected = _steps("resnet20", np.float64, 3, "cpu", images, labels)
    with cupy_on_cpu.installed():
        losses, ours = _steps("resnet20", np.float64, 3, "cuda", images, labels)
        ours = host_arrays(ours)
    expected = host_arrays(expected)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-9)
    for name, value in expected.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-9, atol=1e-9 * np.abs(value).max(), err_msg=name)


def test_a_resnet56_training_step_on_the_gpu_launches_at_most_700_kernels_and_waits_for_the_device_once(capsys):
    """The launch budget of issue 17, counted as CuPy would launch (cuBLAS GEMMs and array operations
    included): the second step of a float32 ResNet-56 (its first also allocates the momentum buffers). The
    one wait is step_report's read of the loss, the correct count and the non-finite counts."""
    rng = np.random.default_rng(0)
    images, labels = rng.standard_normal((2, 3, 8, 8)).astype(np.float32), np.array([1, 7])
    with cupy_on_cpu.installed() as device:
        _steps("resnet56", np.float32, 2, "cuda", images, labels, before_each=device.reset)  # counts: the last
    with capsys.disabled():
        print(f"\nResNet-56 training step on the GPU path: {device.launch_count} launches, syncs {device.syncs}, "
              f"{device.uploads} uploads; " + ", ".join(f"{k} {v}" for k, v in device.launches.most_common(12)))
    assert device.launch_count <= 700
    assert device.syncs == [".get()"]
    assert device.launches["matmul"] == 3 * 55 - 1 + 3  # 55 convolutions (the stem has no dx), the fc layer


def test_a_device_target_out_of_range_gives_that_row_a_nan_loss_without_a_wait():
    with cupy_on_cpu.installed() as device:
        logits = mr.tensor(np.zeros((3, 4), np.float32), device="cuda")
        losses = F.cross_entropy(logits, backend.to_device(np.array([1, 4, -1]), "cuda"), reduction="none")
        assert device.syncs == []
        values = losses.numpy()
    assert values[0] == pytest.approx(np.log(4)) and np.isnan(values[1:]).all()
    with pytest.raises(mr.errors.ArgumentError, match=r"target values must lie in \[0, 4\)"):
        F.cross_entropy(mr.tensor(np.zeros((2, 4), np.float32)), np.array([1, 4]))


def test_minires_train_runs_with_device_cuda(tmp_path, capsys):
    """The CLI end to end on the GPU path (NCHW by default there): trains, evaluates and writes the run."""
    with cupy_on_cpu.installed():
        code = main(["train", "--device", "cuda", "--epochs", "1", "--batch-size", "256", "--quiet",
                     "--out", str(tmp_path / "run")])
    output = capsys.readouterr()
    assert code == 0, output.err
    assert "done: 1 epochs" in output.out
    saved = mr.load(tmp_path / "run" / "model.safetensors")
    assert all(isinstance(v, mr.Tensor) and np.isfinite(v.numpy()).all() for v in saved.values())
    state = mr.training.read_run(str(tmp_path / "run"))[1]
    assert state["config"]["device"] == "cuda" and state["config"]["memory_format"] == "contiguous_format"


def test_the_gpu_benchmark_runs_on_the_stand_in(capsys):
    """benchmarks/bench_gpu.py --dry-run: every table of the GPU benchmark, on the CPU stand-in (so the script
    works the day it meets a GPU; its timings here mean nothing and are not looked at)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    bench_gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_gpu)
    assert bench_gpu.main(["--dry-run", "--models", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "| GEMM W @ col (cuBLAS) |" in out and "| resnet20 | 2 |" in out
    assert "capture failed (RuntimeError: CUDA graph capture is not emulated" in out
    launches = int(out.split("ResNet-56 training step: ")[1].split(" launches")[0])
    assert 0 < launches <= 700


def test_the_gpu_tests_themselves_pass_on_the_stand_in(monkeypatch):
    """tests/test_gpu_kernels.py runs only where a GPU is; its kernel and training-step tests are run here on
    the stand-in (as ``import cupy``), so a GPU day does not begin by debugging them. (Its torch comparison
    needs torch's CUDA build and cannot run here.)"""
    import sys

    import test_gpu_kernels

    with cupy_on_cpu.installed():
        monkeypatch.setitem(sys.modules, "cupy", backend.xp_for("cuda"))
        for dtype in (np.float32, np.float64):
            test_gpu_kernels.test_every_cuda_kernel_on_the_device_equals_its_reference(dtype)
        test_gpu_kernels.test_float64_training_steps_on_the_device_equal_the_cpu_steps("resnet20")


def test_hessian_products_landscape_losses_and_join_splits_agree_on_the_gpu_path():
    """float64 ResNet-20: a Hessian-vector product (ReLUs frozen through op hooks on device arrays), a line of
    the loss landscape and the join split give the CPU's numbers on device="cuda"."""
    from minires.analysis import hessian, joins, landscape, sharpness

    rng = np.random.default_rng(0)
    images, labels = rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 10, 4)
    results = {}
    for device in ("cpu", "cuda"):
        with cupy_on_cpu.installed():
            model = models.get("resnet20", num_classes=10, in_channels=1, seed=0).double().to(device)
            sharpness.estimate_running_statistics(model, images, device)

            def loss_fn(m, device=device):
                return F.cross_entropy(m(mr.Tensor(images, device=device)), backend.to_device(labels, device))
            size = hessian.flat_weights(model).size
            product = hessian.hessian_vector_product(model, loss_fn, np.random.default_rng(1).standard_normal(size))
            centre = landscape.weights_of(model)
            direction = landscape.filter_normalized_direction(model, np.random.default_rng(2))
            line = landscape.losses_along(model, centre, (direction,), [(-0.5,), (0.0,), (0.5,)], images, labels,
                                          device)
            parts = joins.join_gradients(model, images, labels, device)
        results[device] = product, line, parts
    (cpu_product, cpu_line, cpu_parts), (gpu_product, gpu_line, gpu_parts) = results["cpu"], results["cuda"]
    np.testing.assert_allclose(gpu_product, cpu_product, rtol=1e-7, atol=1e-9 * np.abs(cpu_product).max())
    np.testing.assert_allclose(gpu_line, cpu_line, rtol=1e-10)
    for cpu_block, gpu_block in zip(cpu_parts, gpu_parts):
        for cpu_part, gpu_part in zip(cpu_block, gpu_block):
            np.testing.assert_allclose(gpu_part, cpu_part, rtol=1e-9, atol=1e-12 * np.abs(cpu_part).max())
        np.testing.assert_array_equal(gpu_block[0], gpu_block[1] + gpu_block[2])
