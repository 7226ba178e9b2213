"""The channels-last batch-norm kernels, plain and fused with the residual join and ReLU, in training and in
evaluation: the numba flavour against the NumPy reference on pixel counts that span several row chunks
(kernels/batchnorm_channels_last.py splits the rows into chunks of ROWS_PER_CHUNK, one parallel task each),
with a partial last chunk, exactly one chunk, fewer rows than a chunk and a single row; forward values, the batch
statistics, the running statistics, and every gradient under a random upstream gradient."""
import numpy as np
import pytest

import minires as mr
from minires import kernels
from minires.kernels.batchnorm_channels_last import ROWS_PER_CHUNK

pytestmark = pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed")

ROWS = [ROWS_PER_CHUNK * 2 + 37, ROWS_PER_CHUNK, 5, 1]  # one row: a batch of one 1x1 image
CHANNELS = 3
FAMILIES = {"batchnorm_channels_last": False, "batchnorm_relu_channels_last": True}  # fused with ReLU?
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-11}


def _arrays(rows, dtype, seed):
    """x, g, residual, and gamma, beta, mean, var, inv_std for CHANNELS channels."""
    rng = np.random.default_rng(seed)
    pixels = lambda: rng.standard_normal((rows, CHANNELS))
    x = pixels() * rng.uniform(0.5, 3, CHANNELS) + rng.uniform(-2, 2, CHANNELS)  # off-centre, unequal spreads
    g, residual = pixels(), pixels()
    gamma, beta = rng.uniform(0.5, 1.5, CHANNELS), rng.standard_normal(CHANNELS)
    mean, var = x.mean(axis=0), x.var(axis=0)
    channel = (gamma, beta, mean, var, 1 / np.sqrt(var + 1e-5))
    return [a.astype(dtype) for a in (x, g, residual)], [a.astype(dtype) for a in channel]


def _both(op, *args, **kwargs):
    """op's (reference, numba) results, each as a list of arrays, on copies of the same arguments."""
    results = []
    for flavour in ("reference", "numba"):
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        out = kernels.implementation(op, flavour)(*copies, **kwargs)
        results.append([out] if isinstance(out, np.ndarray) else [o for o in out if o is not None])
    return results


def _assert_same(results, dtype, what):
    reference, ours = results
    assert len(ours) == len(reference), what
    for i, (a, b) in enumerate(zip(ours, reference)):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape, (what, i)
        np.testing.assert_allclose(a, b, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype] * np.abs(b).max(),
                                   err_msg=f"{what}: output {i}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("with_residual", [False, True])
def test_numba_equals_the_reference_across_row_chunks(family, rows, dtype, with_residual):
    fused = FAMILIES[family]
    if with_residual and not fused:
        pytest.skip("only the fused kernels add a residual")
    if rows == 1 and dtype == np.float32:
        # var = 0: the reference gives beta exactly, the kernels x * scale + offset (torch's CPU form too),
        # which rounds at |x| gamma / sqrt(eps) / 2^24 in float32: compared in float64 only
        pytest.skip("one row is compared in float64")
    (x, g, residual), (gamma, beta, mean, var, inv_std) = _arrays(rows, dtype, seed=rows)
    extra = [residual if with_residual else None] if fused else []
    backward_extra = [True] if fused else []  # with_gm: the residual's gradient too
    forward = _both(f"{family}_forward_train", x, gamma, beta, 1e-5, *extra)
    _assert_same(forward, dtype, "forward_train")
    y, batch_mean, _, batch_inv_std = forward[0]
    _assert_same(_both(f"{family}_forward_eval", x, gamma, beta, mean, var, 1e-5, *extra), dtype, "forward_eval")
    y_arg = [y] if fused else []
    _assert_same(_both(f"{family}_backward", g, *y_arg, x, gamma, batch_mean, batch_inv_std, *backward_extra),
                 dtype, "backward")
    _assert_same(_both(f"{family}_backward_eval", g, *y_arg, x, gamma, mean, inv_std, *backward_extra),
                 dtype, "backward_eval")


@pytest.mark.parametrize("family", FAMILIES)
def test_the_training_forward_updates_the_running_statistics_as_the_reference(family):
    """Across chunks: PyTorch's rule with the unbiased variance, in place, in both flavours."""
    (x, _, residual), (gamma, beta, mean, var, _) = _arrays(ROWS[0], np.float64, seed=1)
    extra = [residual] if FAMILIES[family] else []
    running = []
    for flavour in ("reference", "numba"):
        stats = (mean.copy(), var.copy())
        kernels.implementation(f"{family}_forward_train", flavour)(x, gamma, beta, 1e-5, *extra,
                                                                    running=(*stats, 0.25))
        running.append(stats)
    expected_mean = 0.75 * mean + 0.25 * x.mean(axis=0)
    expected_var = 0.75 * var + 0.25 * x.var(axis=0, ddof=1)
    for stats in running:
        np.testing.assert_allclose(stats[0], expected_mean, rtol=1e-12)
        np.testing.assert_allclose(stats[1], expected_var, rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("fused", [False, True])
def test_a_batch_of_8_at_32x32_in_channels_last_equals_nchw(training, fused):
    """Through the layers (8 x 32 x 32 = 8192 pixel rows, four chunks): BatchNorm2d, and the fused
    BN + residual + ReLU, on channels-last memory against NCHW memory, in float64: y, dx, d(residual), dgamma,
    dbeta and the running statistics."""
    rng = np.random.default_rng(3)
    x, upstream, residual = (rng.standard_normal((8, 4, 32, 32)) * 2 + 1 for _ in range(3))
    results = []
    for memory_format in (mr.contiguous_format, mr.channels_last):
        layer = mr.nn.BatchNorm2d(4).double()
        layer.weight.array[...] = np.linspace(0.5, 1.5, 4)
        layer.train(training)
        xt = mr.tensor(x, requires_grad=True).contiguous(memory_format=memory_format)
        rt = mr.tensor(residual, requires_grad=True).contiguous(memory_format=memory_format)
        for t in (xt, rt):
            t.retain_grad()
        y = layer(xt, rt, relu=True) if fused else layer(xt)
        assert y.is_contiguous(memory_format=memory_format)
        y.backward(mr.tensor(upstream).contiguous(memory_format=memory_format))
        results.append([y.numpy(), xt.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy(),
                        layer.running_mean.numpy(), layer.running_var.numpy()]
                       + ([rt.grad.numpy()] if fused else []))
    for i, (ours, theirs) in enumerate(zip(results[1], results[0])):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10 * np.abs(theirs).max(), err_msg=str(i))

