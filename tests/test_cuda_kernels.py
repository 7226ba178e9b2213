"""The CUDA C kernels of kernels/cuda without a GPU: every .cu file compiled by NVRTC for sm_80 and sm_90 (no
error, warning or register spill), executed on the CPU by tests/cuda_harness.py and compared with the NumPy
references, and run again under ASan + UBSan and under TSan with zero reports. Where NVRTC or g++ is
missing the tests say so and skip; .ci/run installs both."""
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cuda_harness
import minires as mr
from minires import F, backend, kernels, models
from minires.kernels.cuda import im2col as cuda_im2col, modules

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the references compute with NaN and inf

CUDA_FILES = sorted(pathlib.Path(str(modules.source_path("residual"))).parent.glob("*.cu"))
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="the CUDA-on-CPU harness needs g++")


def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
        return nvrtc
    except Exception:  # noqa: BLE001  (cupy missing, or its NVRTC library missing: both mean "skip")
        return None


@pytest.mark.skipif(_nvrtc() is None, reason="NVRTC is not installed (pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12)")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("path", CUDA_FILES, ids=lambda p: p.name)
def test_every_cuda_file_compiles_with_nvrtc_without_warnings_or_spills(path, arch, capsys):
    nvrtc = _nvrtc()
    program = nvrtc.createProgram(path.read_text(), path.name, [], [])
    try:
        nvrtc.compileProgram(program, [*backend.NVRTC_OPTIONS, f"--gpu-architecture={arch}", "--ptxas-options=-v"])
    except Exception as error:  # noqa: BLE001  (NVRTCError: the log says where)
        pytest.fail(f"{path.name} for {arch}: {error}\n{nvrtc.getProgramLog(program)}")
    log = nvrtc.getProgramLog(program)
    assert "warning" not in log.lower(), log
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    registers = dict(re.findall(r"Function properties for (\w+)\n.*?\n.*?Used (\d+) registers", log))
    assert sorted(registers) == sorted(cuda_harness.kernel_signatures(path)), log
    assert spills and all(stores == loads == "0" for stores, loads in spills), log
    with capsys.disabled():
        print(f"\n{path.name} {arch} registers: " + ", ".join(f"{k} {v}" for k, v in sorted(registers.items())))


# --- every CUDA kernel against its NumPy reference, on the CPU harness ------------------------------------

def _values(rng, shape, dtype):
    """Normal values with NaN and +-inf at random places, and exact zeros (the ReLU's edge)."""
    x = rng.standard_normal(shape).astype(dtype)
    pick = rng.random(shape)
    x[pick < 0.05], x[(pick >= 0.05) & (pick < 0.1)], x[(pick >= 0.1) & (pick < 0.15)] = np.nan, np.inf, -np.inf
    x[(pick >= 0.15) & (pick < 0.2)] = 0
    return x


def _residual_cases(rng, n, c, h, w, dtype, extra, sh, sw):
    """(registry op, its arguments) for every residual.cu kernel on one drawn geometry."""
    x, other = _values(rng, (n, c, h, w), dtype), _values(rng, (n, c, h, w), dtype)
    co, oh, ow = c + extra, -(-h // sh), -(-w // sw)
    return [("residual_add_forward", (x, other, True)), ("residual_add_forward", (x, other, False)),
            ("residual_add_backward", (x, other, True)), ("relu_backward", (x, other)),
            ("shortcut_a_forward", (x, co, sh, sw)),
            ("shortcut_a_backward", (_values(rng, (n, co, oh, ow), dtype), c, h, w, sh, sw)),
            ("shortcut_a_forward_channels_last", (x.transpose(0, 2, 3, 1).copy(), co, sh, sw)),
            ("shortcut_a_backward_channels_last", (_values(rng, (n, oh, ow, co), dtype), c, h, w, sh, sw))]


geometries = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 7), st.integers(1, 7),
                       st.sampled_from([np.float32, np.float64]), st.integers(0, 4), st.integers(1, 2),
                       st.integers(1, 3))


def _harness_module(path, sanitizer="plain"):
    return cuda_harness.HarnessModule(path, sanitizer)


@needs_gxx
@settings(max_examples=25, deadline=None)
@given(geometry=geometries, seed=st.integers(0, 2**16))
def test_residual_kernels_equal_their_references_on_the_harness(geometry, seed):
    """Exact equality (these kernels add, select and copy), NaN and inf where the reference has them; a
    block of 32 threads and at most 3 blocks, so every grid-stride loop takes several turns."""
    with modules.built_by(_harness_module, block=32, max_blocks=3):
        for op, args in _residual_cases(np.random.default_rng(seed), *geometry):
            ours = kernels.implementation(op, "cuda")(*args)
            reference = kernels.implementation(op, "reference")(*args)
            assert ours.dtype == reference.dtype and ours.shape == reference.shape, op
            np.testing.assert_array_equal(ours, reference, err_msg=op)


def _batchnorm_cases(rng, n, c, m, dtype, channels_first=False):
    """(registry op, its arguments) for every batchnorm.cu entry in the registry, on (N, C, M) values; with
    ``channels_first`` x and g are (N, C, M) views of (C, N, M) memory, as the GPU convolution's output."""
    def values(scale, shift):
        a = rng.standard_normal((c, n, m) if channels_first else (n, c, m)) * scale + shift
        return (a.transpose(1, 0, 2) if channels_first else a).astype(dtype, copy=False)
    x, g = values(3, 1), values(1, 0)
    gamma, beta = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    mean, var = rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)
    inv_std = (1 / np.sqrt(var + 1e-5)).astype(dtype)
    return [("batchnorm_forward_train", (x, gamma, beta, 1e-5)),
            ("batchnorm_forward_eval", (x, gamma, beta, mean, var, 1e-5)),
            ("batchnorm_backward", (g, x, gamma, mean, inv_std)),
            ("batchnorm_backward_eval", (g, x, gamma, mean, inv_std))]


@needs_gxx
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 6), m=st.integers(1, 40), dtype=st.sampled_from([np.float32, np.float64]),
       block=st.sampled_from([1, 4, 32]), channels_first=st.booleans(), fused=st.booleans(), seed=st.integers(0, 2**16))
def test_batchnorm_kernels_equal_their_references_on_the_harness(n, c, m, dtype, block, channels_first, fused, seed):
    """float64 to 1e-12 and float32 to 1e-6 of each output's scale (the sums run in another order: a
    block's tree instead of NumPy's pairwise sum); blocks of 1 to 32 threads and at most 2 blocks, so the
    channels, the values of a channel and the elements all take several turns of their strided loops. The
    running statistics move alike (each flavour updates its own copy), and dx is laid out as x. ``fused``:
    kernels/batchnorm_relu.py's batch-norm + residual + ReLU (the same launches with the residual and the
    mask) against the unfused references; the forward's ReLU clamps exactly."""
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    with modules.built_by(_harness_module, block=block, max_blocks=2):
        rng = np.random.default_rng(seed)
        mean, var = rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)
        x_shape = (n, c, m)
        cases = _batchnorm_relu_cases if fused else _batchnorm_cases
        for op, args in cases(rng, n, c, m, dtype, channels_first):
            ours, reference = (_with_running_statistics(op, flavour, args, (mean, var) if n * m > 1 else None)
                               for flavour in ("cuda", "reference"))
            if op.endswith("_backward"):  # dx laid out as x (the strides of the axes longer than 1)
                x = args[2] if fused else args[1]
                assert [st for st, size in zip(ours[0].strides, x_shape) if size > 1] == \
                    [st for st, size in zip(x.strides, x_shape) if size > 1]
            assert_outputs_match(op, ours, reference, tolerance)


def _batchnorm_relu_cases(rng, n, c, m, dtype, channels_first=False):
    """(registry op, its arguments) for kernels/batchnorm_relu.py: with and without a residual and gm."""
    cases = []
    for op, args in _batchnorm_cases(rng, n, c, m, dtype, channels_first):
        x = args[0] if "forward" in op else args[1]
        residual = (rng.standard_normal((n, c, m)) * 2).astype(dtype)
        y = kernels.implementation("batchnorm_relu_forward_train", "reference")(x, *args[-3:-1], 1e-5, residual)[0] \
            if "backward" in op else None
        relu_op = op.replace("batchnorm_", "batchnorm_relu_")
        if "forward" in op:
            cases += [(relu_op, args + (None,)), (relu_op, args + (residual,))]
        else:
            g, rest = args[0], args[1:]
            cases += [(relu_op, (g, y) + rest + (False,)), (relu_op, (g, y) + rest + (True,))]
    return cases


def assert_outputs_match(op, ours, reference, tolerance=None):
    """A CUDA kernel's outputs against its reference's (tuples): the same count, dtypes and shapes, None
    where the reference gives None (a gradient not asked for); exactly when ``tolerance`` is None, else to
    ``tolerance`` of each output's scale (its largest finite magnitude)."""
    assert len(ours) == len(reference), op
    for i, (mine, theirs) in enumerate(zip(ours, reference)):
        if theirs is None:
            assert mine is None, (op, i)
            continue
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, (op, i)
        if tolerance is None:
            np.testing.assert_array_equal(mine, theirs, err_msg=f"{op} {i}")
        else:
            scale = np.nanmax(np.abs(np.where(np.isinf(theirs), 0, theirs))) + 1e-30
            np.testing.assert_allclose(mine, theirs, rtol=tolerance, atol=tolerance * scale, err_msg=f"{op} {i}")


def _with_running_statistics(op, flavour, args, running):
    """The kernel's outputs as a tuple; a training forward also gets a copy of the running statistics and
    returns them after its update (none with one value per channel, whose unbiased variance divides by 0)."""
    if not op.endswith("forward_train") or running is None:
        out = kernels.implementation(op, flavour)(*args)
        return out if isinstance(out, tuple) else (out,)
    state = [a.copy() for a in running]
    return kernels.implementation(op, flavour)(*args, running=(*state, 0.1)) + tuple(state)


def _pool_cases(rng, n, c, h, w, dtype, kernel, stride, padding):
    """(registry op, its arguments) for every pool.cu kernel; whole numbers tie often, NaN and inf sprinkled."""
    x = _values(rng, (n, c, h, w), dtype)
    x[rng.random(x.shape) < 0.3] = 1  # ties
    window = (kernel, kernel, stride, stride, padding, padding)
    oh, ow = (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1
    g = rng.standard_normal((n, c, oh, ow)).astype(dtype)
    argmax = kernels.implementation("max_pool_forward", "reference")(x, *window)[1]
    return [("max_pool_forward", (x, *window)), ("max_pool_backward", (g, argmax, h, w, *window)),
            ("avg_pool_forward", (x, *window)), ("avg_pool_backward", (g, h, w, *window)),
            ("global_avg_pool_forward", (x,)), ("global_avg_pool_backward", (g[:, :, :1, :1].copy(), h, w))]


@needs_gxx
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(3, 8), w=st.integers(3, 8),
       dtype=st.sampled_from([np.float32, np.float64]), window=st.sampled_from([(2, 2, 0), (3, 2, 1), (3, 1, 1)]),
       block=st.sampled_from([1, 4, 32]), seed=st.integers(0, 2**16))
def test_pool_kernels_equal_their_references_on_the_harness(n, c, h, w, dtype, window, block, seed):
    """Max pooling exactly (the same winners, NaN included, and the same gradient sums); the averages to
    1e-12 (float64) or 1e-6 (float32) of their scale, summed in another order."""
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    with modules.built_by(_harness_module, block=block, max_blocks=2):
        for op, args in _pool_cases(np.random.default_rng(seed), n, c, h, w, dtype, *window):
            ours = kernels.implementation(op, "cuda")(*args)
            reference = kernels.implementation(op, "reference")(*args)
            ours, reference = (ours, reference) if isinstance(ours, tuple) else ((ours,), (reference,))
            assert_outputs_match(op, ours, reference, None if op.startswith("max_pool") else tolerance)


def _im2col_cases(rng, n, c, h, w, dtype, kernel, stride, padding, dilation):
    """(registry op, its arguments) for im2col.cu's kernels (the columns drawn at random for col2im)."""
    x = _values(rng, (n, c, h, w), dtype)
    window = (kernel, kernel, stride, stride, padding, padding, dilation, dilation)
    col = _values(rng, kernels.implementation("im2col", "reference")(x, *window).shape, dtype)
    rows = np.ascontiguousarray(col.transpose(1, 2, 3, 0, 4, 5))  # the (C, KH, KW, N, OH, OW) order
    return [("im2col", (x, *window)), ("col2im", (col, h, w, *window[2:])),
            ("im2col_rows", (x, *window)), ("col2im_rows", (rows, h, w, *window[2:]))]


@needs_gxx
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9),
       dtype=st.sampled_from([np.float32, np.float64]),
       window=st.sampled_from([(3, 1, 1, 1), (3, 2, 1, 1), (1, 2, 0, 1), (3, 1, 2, 2), (2, 2, 0, 1)]),
       seed=st.integers(0, 2**16))
def test_im2col_kernels_equal_their_references_on_the_harness(n, c, h, w, dtype, window, seed):
    """Exactly, NaN and inf included: im2col copies, col2im adds the taps in the reference's order."""
    with modules.built_by(_harness_module, block=32, max_blocks=3):
        for op, args in _im2col_cases(np.random.default_rng(seed), n, c, h, w, dtype, *window):
            ours = kernels.implementation(op, "cuda")(*args)
            reference = kernels.implementation(op, "reference")(*args)
            assert ours.dtype == reference.dtype and ours.shape == reference.shape, op
            np.testing.assert_array_equal(ours, reference, err_msg=op)


def _network_step(name, size):
    """Logits and parameter gradients of one float64 forward + backward at batch 2."""
    model = models.get(name, num_classes=10, seed=0).double()
    x = mr.tensor(np.random.default_rng(1).standard_normal((2, 3, size, size)))
    logits = model(x)
    F.cross_entropy(logits, np.arange(2)).backward()
    return logits.numpy(), {k: p.grad.numpy() for k, p in model.named_parameters()}


@needs_gxx
@pytest.mark.parametrize("name, size", [("resnet20", 8), ("resnet18", 32)])
def test_a_network_on_the_cuda_kernels_equals_it_on_the_numba_kernels(name, size):
    """A float64 forward + backward with every op that has a CUDA kernel running it on the harness (the
    rest on its reference; NCHW memory, so im2col convolutions): the same logits and gradients as the
    numba flavour, to 1e-9 of each array's scale. (ResNet-18 at 32x32: at 8x8 its last batch-norms see two
    values per channel, and there even the numba and reference flavours differ by 7e-8.)"""
    flavour = "numba" if kernels.numba_available() else "reference"
    with kernels.using(flavour):
        expected_logits, expected = _network_step(name, size)
    built = []
    with kernels.using("cuda"), modules.built_by(lambda path: built.append(_harness_module(path)) or built[-1],
                                                 block=32, max_blocks=4):
        logits, grads = _network_step(name, size)
    assert {pathlib.Path(str(m._library._name)).name.split("-")[0] for m in built} >= {"im2col", "batchnorm",
                                                                                        "residual"}
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-9, atol=1e-9 * np.abs(expected_logits).max())
    for key, grad in expected.items():
        np.testing.assert_allclose(grads[key], grad, rtol=1e-9, atol=1e-9 * (np.abs(grad).max() + 1e-30),
                                   err_msg=key)


def _sgd_cases(rng, size, dtype):
    """(registry op, its arguments) for sgd.cu: with and without momentum, nesterov and weight decay."""
    p, g, buffer = (rng.standard_normal(size).astype(dtype) for _ in range(3))
    scalar = np.dtype(dtype).type
    return [("sgd_update", (p.copy(), g, buffer.copy(), *map(scalar, (0.1, momentum, keep, decay)), nesterov, first))
            for momentum, keep, decay, nesterov, first in [(0.0, 1.0, 0.0, False, False), (0.9, 0.7, 5e-4, False, True),
                                                           (0.9, 1.0, 1e-2, True, False)]]


@needs_gxx
@settings(max_examples=10, deadline=None)
@given(size=st.integers(1, 300), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_the_sgd_kernel_equals_its_reference_on_the_harness(size, dtype, seed):
    """In place, to the bit (the same products and sums in the parameter's dtype)."""
    with modules.built_by(_harness_module, block=32, max_blocks=3):
        for op, args in _sgd_cases(np.random.default_rng(seed), size, dtype):
            p, buffer = args[0], args[2]
            reference = kernels.implementation(op, "reference")(p.copy(), args[1], buffer.copy(), *args[3:])
            ours = kernels.implementation(op, "cuda")(*args)
            assert ours[0] is p and ours[1] is buffer
            np.testing.assert_array_equal(ours[0], reference[0])
            np.testing.assert_array_equal(ours[1], reference[1])


def _many_cases(rng, dtype):
    """(registry op, its arguments) for the kernels over a table of arrays: sizes 1 to 700, a NaN and an inf."""
    sizes = [1, 5, 130, 700, 33]
    params, grads, buffers = ([rng.standard_normal(k).astype(dtype) for k in sizes] for _ in range(3))
    scalars = tuple(map(np.dtype(dtype).type, (0.1, 0.9, 0.8, 1e-3)))
    watched = [a.copy() for a in params]
    watched[2][[3, 77]] = np.nan, np.inf
    watched[3][-1] = -np.inf
    return [("sgd_update_many", (params, grads, buffers, *scalars, False, [True, False, True, False, False])),
            ("sgd_update_many", ([p.copy() for p in params], grads, [None] * 5, scalars[0], *map(np.dtype(dtype).type,
                                 (0, 1, 0)), False, [False] * 5)),
            ("count_non_finite", (watched,))]


@needs_gxx
@settings(max_examples=6, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_the_many_array_kernels_equal_their_references_on_the_harness(dtype, seed):
    """One launch over a table of addresses: the SGD update of every parameter to the bit (buffers started
    or not per parameter, momentum or none), and each array's count of NaN and inf exactly; a grid smaller
    than the table and the longest array."""
    with modules.built_by(_harness_module, block=8, max_blocks=2):
        for op, args in _many_cases(np.random.default_rng(seed), dtype):
            copied = [[a.copy() if a is not None else None for a in arg] if isinstance(arg, list) and
                      isinstance(arg[0], (np.ndarray, type(None))) else arg for arg in args]
            ours = kernels.implementation(op, "cuda")(*args)
            reference = kernels.implementation(op, "reference")(*copied)
            if op == "count_non_finite":
                assert ours.dtype == np.int64
                np.testing.assert_array_equal(ours, reference)
                assert list(ours) == [0, 0, 2, 1, 0]
                continue
            mine = list(ours[0]) + [b for b in ours[1] if b is not None]
            theirs = list(reference[0]) + [b for b in reference[1] if b is not None]
            assert len(mine) == len(theirs)
            for a, b in zip(mine, theirs):
                np.testing.assert_array_equal(a, b)


@needs_gxx
def test_the_harness_refuses_what_cupy_would_pass_wrongly():
    """Wrong dtype, a non-contiguous array, a Python float for a long long: refused with the argument named."""
    module = _harness_module(modules.source_path("residual"))
    kernel = module.get_function("residual_add_forward_f32")
    a = np.zeros(8, np.float32)
    with pytest.raises(TypeError, match="argument 0 .*dtype float64"):
        kernel((1,), (8,), (a.astype(np.float64), a, a, 8, 0))
    with pytest.raises(ValueError, match="argument 1 .*not C-contiguous"):
        kernel((1,), (8,), (a, np.zeros(16, np.float32)[::2], a, 8, 0))
    with pytest.raises(TypeError, match="argument 3 .*passed as double"):
        kernel((1,), (8,), (a, a, a, 8.0, 0))
    assert module.launches == 0


def exercise_every_kernel(sanitizer="plain"):
    """Every CUDA kernel once on small inputs, on a sanitizer build (run in a fresh process); returns the
    registry ops it ran."""
    rng, exercised = np.random.default_rng(0), set()
    with modules.built_by(lambda path: _harness_module(path, sanitizer), block=16, max_blocks=2):
        for geometry in [(2, 3, 5, 4, np.float32, 2, 2, 1), (1, 4, 3, 3, np.float64, 3, 1, 2)]:
            cases = _residual_cases(rng, *geometry) + _batchnorm_cases(rng, *geometry[:2], 7, geometry[4]) + \
                _batchnorm_relu_cases(rng, *geometry[:2], 7, geometry[4], channels_first=True) + \
                _pool_cases(rng, *geometry[:5], 3, 2, 1) + _im2col_cases(rng, *geometry[:5], 3, 2, 1, 1) + \
                _sgd_cases(rng, 50, geometry[4]) + _many_cases(rng, geometry[4])
            for op, args in cases:
                kernels.implementation(op, "cuda")(*args)
                exercised.add(op)
            exercised |= _run_conv2d(rng, *geometry[:5])
    return exercised


def _run_conv2d(rng, n, c, h, w, dtype):
    """conv2d's CUDA version (host code around cuBLAS and im2col.cu) forward and backward: one GEMM for the
    batch (groups 1) and the per-image products (groups 2 where the channels allow); the ops it ran."""
    from minires.functional.window import sliding_window
    for groups in (1, 2) if c % 2 == 0 else (1,):
        x, weight = rng.standard_normal((n, c, h, w)).astype(dtype), rng.standard_normal((4, c // groups, 3, 2))
        window = sliding_window("conv2d", x.shape, (3, 2), (2, 1), 1)
        y, saved = kernels.implementation("conv2d_forward", "cuda")(x, weight.astype(dtype), None, window, groups)
        g = rng.standard_normal(y.shape).astype(dtype)
        kernels.implementation("conv2d_backward", "cuda")(saved, g, (True, True, True))
    return {"conv2d_forward", "conv2d_backward"}


@needs_gxx
def test_the_sanitizer_runs_exercise_every_cuda_slot_of_the_registry():
    filled = {op for op in kernels.registered() if kernels.implementation(op, "cuda") is not None}
    assert exercise_every_kernel() == filled


SANITIZER_REPORT = re.compile(r"ERROR: AddressSanitizer|runtime error|WARNING: ThreadSanitizer")


def _under_sanitizer(sanitizer, code):
    """Run Python ``code`` (in tests/) with the sanitizer's runtime preloaded: (exit status, its output)."""
    environment = {"LD_PRELOAD": cuda_harness.runtime_library(sanitizer), "ASAN_OPTIONS": "detect_leaks=0",
                   "TSAN_OPTIONS": "halt_on_error=1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=pathlib.Path(__file__).parent, env=environment,
                            capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


@needs_gxx
@pytest.mark.parametrize("sanitizer", ["address", "thread"])
def test_every_kernel_runs_clean_under_the_sanitizers(sanitizer):
    """ASan + UBSan (out-of-bounds, overflow) and TSan (races between a block's threads): zero reports."""
    status, report = _under_sanitizer(sanitizer, f"import test_cuda_kernels as t; "
                                                 f"t.exercise_every_kernel({sanitizer!r}); print('clean run')")
    assert status == 0 and "clean run" in report, report[-3000:]
    assert not SANITIZER_REPORT.search(report), report[-3000:]


BROKEN = """
extern "C" __global__ void read_past_the_end_f32(const float* x, float* y, long long n) {
    for (long long i = threadIdx.x; i <= n; i += blockDim.x) y[i % n] = x[i];  // i == n is out of bounds
}
extern "C" __global__ void no_barrier_f32(const float* x, float* y, long long n) {
    __shared__ float shared[64];
    shared[threadIdx.x] = x[threadIdx.x];  // a __syncthreads() is missing before the neighbour's read
    y[threadIdx.x] = shared[(threadIdx.x + 1) % n];
}
"""


@needs_gxx
@pytest.mark.parametrize("sanitizer, kernel, report", [
    ("address", "read_past_the_end_f32", "heap-buffer-overflow"),
    ("thread", "no_barrier_f32", "data race")])
def test_the_sanitizer_runs_catch_an_out_of_bounds_read_and_a_missing_barrier(tmp_path, sanitizer, kernel, report):
    """The checks above can fail: the same harness and runtimes report a broken kernel of each kind."""
    source = tmp_path / "broken.cu"
    source.write_text(BROKEN)
    code = (f"import numpy as np, cuda_harness as h; m = h.HarnessModule({str(source)!r}, {sanitizer!r}); "
            f"x = np.ones(64, np.float32); m.get_function({kernel!r})((1,), (64,), (x, np.empty_like(x), 64))")
    status, output = _under_sanitizer(sanitizer, code)
    assert status != 0 and report in output, output[-3000:]


def _conv_step(x, weight, bias, **window):
    """y and the gradients of x, weight and bias under a random upstream gradient (float64)."""
    x, weight = mr.tensor(x, requires_grad=True), mr.tensor(weight, requires_grad=True)
    bias = None if bias is None else mr.tensor(bias, requires_grad=True)
    y = F.conv2d(x, weight, bias, **window)
    upstream = np.random.default_rng(7).standard_normal(y.shape)
    (y * mr.tensor(upstream)).sum().backward()
    return [y.numpy()] + [t.grad.numpy() for t in (x, weight, bias) if t is not None]


@needs_gxx
@pytest.mark.parametrize("stride, padding, dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2), (2, 0, 1)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("memory_format", ["contiguous_format", "channels_last"])
def test_the_gpu_convolution_equals_the_cpu_one(stride, padding, dilation, bias, memory_format):
    """kernels/cuda/im2col.py's conv2d (one GEMM over the batch's (K, N P) columns, im2col_rows/col2im_rows on the
    harness) against kernels/im2col.py's reference: output and the three gradients, float64,
    with a channels-last input converted and its gradient given back channels-last."""
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5) if bias else None
    if memory_format == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    window = dict(stride=stride, padding=padding, dilation=dilation)
    with kernels.using("reference"):
        expected = _conv_step(x, weight, b, **window)
    with kernels.using("cuda"), modules.built_by(_harness_module, block=32, max_blocks=3):
        ours = _conv_step(x, weight, b, **window)
        assert kernels.table.conv2d_forward.cuda is cuda_im2col.conv2d_forward
    for name, mine, theirs in zip(["y", "dx", "dW", "db"], ours, expected):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12 * np.abs(theirs).max(), err_msg=name)
