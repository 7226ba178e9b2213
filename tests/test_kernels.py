"""The hand-written kernels: numba agrees with the NumPy reference on drawn and boundary configurations,
and the Functions built on them keep PyTorch's semantics where a single op call cannot show it."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, strategies as st

import minires as mr
from minires import F, kernels
from minires.errors import DTypeError, ShapeError
from minires.kernels import conv_columns
from minires.kernels import batchnorm, im2col, pool, residual
from against_torch import assert_close, check_against_torch

pytestmark = pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed")

DTYPES = [np.float32, np.float64]


@st.composite
def window_configs(draw, dilation=True):
    """(x shape, kernel, stride, padding, dilation) that fit: odd sizes, stride > kernel, 1x1 and edges."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    sh, sw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw:
        dh = dw = 1
        kh, kw = min(kh, h + 2 * ph), min(kw, w + 2 * pw)
    return (n, c, h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw)


BOUNDARY = [  # shape, kernel, stride, padding, dilation
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1)),  # a single pixel
    ((2, 3, 5, 7), (3, 3), (1, 1), (1, 1), (1, 1)),  # padding = kernel // 2, odd sizes
    ((2, 2, 7, 7), (2, 2), (4, 4), (0, 0), (1, 1)),  # stride > kernel
    ((1, 2, 4, 4), (4, 4), (1, 1), (0, 0), (1, 1)),  # kernel = input: one output pixel
    ((1, 1, 9, 5), (3, 2), (2, 3), (1, 1), (3, 2)),  # dilation, uneven everything
    ((3, 4, 6, 6), (1, 1), (2, 2), (0, 0), (1, 1)),  # 1x1 with stride
]


def _random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _check_im2col_pair(shape, kernel, stride, padding, dilation, dtype):
    x = _random(shape, dtype)
    args = (*kernel, *stride, *padding, *dilation)
    col_ref, col_numba = im2col.im2col_reference(x, *args), im2col.im2col_numba(x, *args)
    assert np.array_equal(col_ref, col_numba)  # a pure gather: bit-identical
    h, w = shape[2:]
    image_ref = im2col.col2im_reference(col_ref, h, w, *args[2:])
    image_numba = im2col.col2im_numba(col_ref, h, w, *args[2:])
    np.testing.assert_allclose(image_numba, image_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", BOUNDARY)
def test_im2col_col2im_boundary_cases(config, dtype):
    _check_im2col_pair(*config, dtype)


@given(window_configs())
def test_im2col_col2im_numba_equals_reference(config):
    _check_im2col_pair(*config, np.float32)


def test_col2im_is_the_adjoint_of_im2col():
    """<im2col(x), c> = <x, col2im(c)>: the identity that makes col2im the right backward."""
    shape, kernel, stride, padding, dilation = BOUNDARY[4]
    args = (*kernel, *stride, *padding, *dilation)
    x = _random(shape, np.float64)
    c = _random(im2col.im2col_reference(x, *args).shape, np.float64, seed=1)
    lhs = (im2col.im2col_numba(x, *args) * c).sum()
    rhs = (x * im2col.col2im_numba(c, *shape[2:], *args[2:])).sum()
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_im2col_writes_into_a_given_buffer():
    x = _random((2, 3, 6, 6), np.float32)
    buffer = np.full(2 * 3 * 9 * 36 + 10, np.nan, np.float32)[:2 * 3 * 9 * 36]
    for flavour in (im2col.im2col_reference, im2col.im2col_numba):
        col = flavour(x, 3, 3, 1, 1, 1, 1, 1, 1, out=buffer)
        assert np.shares_memory(col, buffer)
        assert np.array_equal(col, im2col.im2col_reference(x, 3, 3, 1, 1, 1, 1, 1, 1))
    for flavour in (im2col.im2col_reference, im2col.im2col_numba):
        with pytest.raises(ValueError):  # a buffer of the wrong size is refused by the reshape
            flavour(x, 3, 3, 1, 1, 1, 1, 1, 1, out=buffer[:10])


@given(window_configs(dilation=False), st.sampled_from(DTYPES))
def test_pooling_numba_equals_reference(config, dtype):
    shape, kernel, stride, padding, _ = config
    n, c, h, w = shape
    x = (np.random.default_rng(0).permutation(n * c * h * w).reshape(shape) * 0.1).astype(dtype)  # no ties
    args = (*kernel, *stride, *padding)
    y_ref, argmax_ref = pool.max_pool_forward_reference(x, *args)
    y_numba, argmax_numba = pool.max_pool_forward_numba(x, *args)
    assert np.array_equal(y_ref, y_numba) and np.array_equal(argmax_ref, argmax_numba)
    g = _random(y_ref.shape, dtype, seed=2)
    np.testing.assert_allclose(pool.max_pool_backward_numba(g, argmax_ref, h, w, *args),
                               pool.max_pool_backward_reference(g, argmax_ref, h, w, *args), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pool.avg_pool_forward_numba(x, *args), pool.avg_pool_forward_reference(x, *args),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pool.avg_pool_backward_numba(g, h, w, *args),
                               pool.avg_pool_backward_reference(g, h, w, *args), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pool.global_avg_pool_forward_numba(x), pool.global_avg_pool_forward_reference(x),
                               rtol=1e-5, atol=1e-6)
    g1 = _random((n, c, 1, 1), dtype, seed=3)
    np.testing.assert_allclose(pool.global_avg_pool_backward_numba(g1, h, w),
                               pool.global_avg_pool_backward_reference(g1, h, w), rtol=1e-6)


def test_max_pool_ties_go_to_the_first_pixel_in_both_flavours():
    x = np.ones((1, 1, 4, 4), np.float32)
    _, argmax_ref = pool.max_pool_forward_reference(x, 2, 2, 2, 2, 0, 0)
    _, argmax_numba = pool.max_pool_forward_numba(x, 2, 2, 2, 2, 0, 0)
    assert np.array_equal(argmax_ref, argmax_numba)
    assert argmax_ref.ravel().tolist() == [0, 2, 8, 10]


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 40), st.sampled_from(DTYPES))
def test_batchnorm_numba_equals_reference(n, c, m, dtype):
    if n * m < 2:
        m = 2
    x = _random((n, c, m), dtype) * 3 + 1
    gamma, beta, g = _random((c,), dtype, 1), _random((c,), dtype, 2), _random((n, c, m), dtype, 3)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    ref = batchnorm.batchnorm_forward_train_reference(x, gamma, beta, 1e-5)
    fast = batchnorm.batchnorm_forward_train_numba(x, gamma, beta, 1e-5)
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, **tol)
    mean, var = ref[1], np.abs(ref[2]) + 0.5
    np.testing.assert_allclose(batchnorm.batchnorm_forward_eval_numba(x, gamma, beta, mean, var, 1e-5),
                               batchnorm.batchnorm_forward_eval_reference(x, gamma, beta, mean, var, 1e-5), **tol)
    for a, b in zip(batchnorm.batchnorm_backward_numba(g, x, gamma, ref[1], ref[3]),
                    batchnorm.batchnorm_backward_reference(g, x, gamma, ref[1], ref[3])):
        np.testing.assert_allclose(a, b, **tol)
    for a, b in zip(batchnorm.batchnorm_backward_eval_numba(g, x, gamma, mean, 1 / np.sqrt(var + 1e-5)),
                    batchnorm.batchnorm_backward_eval_reference(g, x, gamma, mean, 1 / np.sqrt(var + 1e-5))):
        np.testing.assert_allclose(a, b, **tol)


@given(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 7), st.integers(1, 7)),
       st.integers(0, 4), st.integers(1, 3), st.booleans())
def test_residual_kernels_numba_equal_reference(shape, extra_channels, stride, relu):
    out, shortcut, g = _random(shape, np.float32), _random(shape, np.float32, 1), _random(shape, np.float32, 2)
    y = residual.residual_add_forward_reference(out, shortcut, relu)
    np.testing.assert_array_equal(residual.residual_add_forward_numba(out, shortcut, relu), y)
    np.testing.assert_array_equal(residual.residual_add_backward_numba(g, y, relu),
                                  residual.residual_add_backward_reference(g, y, relu))
    c_out = shape[1] + extra_channels
    ya = residual.shortcut_a_forward_reference(out, c_out, stride, stride % 2 + 1)
    np.testing.assert_array_equal(residual.shortcut_a_forward_numba(out, c_out, stride, stride % 2 + 1), ya)
    ga = _random(ya.shape, np.float32, 3)
    np.testing.assert_array_equal(residual.shortcut_a_backward_numba(ga, shape[1], *shape[2:], stride, stride % 2 + 1),
                                  residual.shortcut_a_backward_reference(ga, shape[1], *shape[2:], stride, stride % 2 + 1))


def test_option_a_pads_channels_evenly_like_the_cifar_reference():
    x = mr.tensor(np.ones((1, 16, 4, 4), np.float32))
    y = F.shortcut_a(x, 32, 2).numpy()
    assert y.shape == (1, 32, 2, 2)
    assert (y[:, :8] == 0).all() and (y[:, 8:24] == 1).all() and (y[:, 24:] == 0).all()


@pytest.mark.parametrize("flavour", ["reference", "numba"])
def test_batch_norm_running_statistics_match_torch_after_several_steps(flavour, monkeypatch):
    monkeypatch.setenv("MINIRES_KERNELS", flavour)
    rng = np.random.default_rng(4)
    c = 3
    ours_mean, ours_var = np.zeros(c, np.float32), np.ones(c, np.float32)
    theirs_mean, theirs_var = torch.zeros(c), torch.ones(c)
    weight, bias = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    for step in range(5):
        x = (rng.standard_normal((4, c, 5, 5)) * (step + 1) + step).astype(np.float32)
        y = F.batch_norm(mr.tensor(x), ours_mean, ours_var, mr.tensor(weight), mr.tensor(bias), True, 0.2)
        y_torch = TF.batch_norm(torch.from_numpy(x), theirs_mean, theirs_var, torch.from_numpy(weight),
                                torch.from_numpy(bias), training=True, momentum=0.2)
        assert_close(y.numpy(), y_torch.numpy(), f"step {step} output")
    assert_close(ours_mean, theirs_mean.numpy(), "running_mean")
    assert_close(ours_var, theirs_var.numpy(), "running_var (unbiased)")
    x = rng.standard_normal((2, c, 5, 5)).astype(np.float32)
    check_against_torch(
        lambda t: F.batch_norm(t, ours_mean, ours_var, mr.tensor(weight), mr.tensor(bias), False),
        lambda t: TF.batch_norm(t, theirs_mean, theirs_var, torch.from_numpy(weight), torch.from_numpy(bias)),
        [x])


def test_running_statistics_accept_tensors_and_update_them_in_place():
    mean, var = mr.tensor(np.zeros(2, np.float32)), mr.tensor(np.ones(2, np.float32))
    x = mr.tensor(np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2))
    F.batch_norm(x, mean, var, None, None, training=True)
    assert mean.numpy().tolist() == pytest.approx([0.1 * 5.5, 0.1 * 9.5])


@pytest.mark.parametrize("keep", [False, True])
def test_conv_keep_and_recompute_columns_give_the_same_gradients(keep):
    x, w = _random((2, 3, 6, 6), np.float32), _random((4, 3, 3, 3), np.float32, 1)
    with conv_columns.keep_columns(keep):
        check_against_torch(lambda a, b: F.conv2d(a, b, padding=1), lambda a, b: TF.conv2d(a, b, padding=1), [x, w])


def test_the_column_workspace_is_lent_to_one_borrower_at_a_time():
    """The aliasing hazard of a shared buffer is refused, not commented: a second lease while one is open fails."""
    from minires.errors import AutogradError

    with conv_columns.workspace.lease(np, 10, np.float32) as first:
        with pytest.raises(AutogradError, match="already lent out"):
            with conv_columns.workspace.lease(np, 10, np.float32):
                pass
        assert first.size == 10
    with conv_columns.workspace.lease(np, 10, np.float32):  # free again once the first block ended
        pass


def test_convolutions_sharing_the_workspace_backprop_correctly():
    """Two same-shaped convolutions in one graph share the column workspace: backward must not mix them."""
    x = _random((2, 4, 5, 5), np.float32)
    w1, w2 = _random((4, 4, 3, 3), np.float32, 1), _random((4, 4, 3, 3), np.float32, 2)

    def net(F_, relu):
        return lambda a, b, c: F_.conv2d(relu(F_.conv2d(a, b, padding=1)), c, padding=1) + a

    check_against_torch(net(F, F.relu), net(TF, torch.relu), [x, w1, w2])


@pytest.mark.skipif(not kernels.numba_available(), reason="the column workspace is the numba flavour's")
def test_pointwise_convolution_skips_im2col(monkeypatch):
    """On the numba flavour's column workspace (the reference unfolds every convolution, plainly)."""
    def fail(*args, **kwargs):
        raise AssertionError("im2col must not run for a 1x1 stride-1 convolution")

    monkeypatch.setattr(conv_columns.ConvColumns, "_unfold", fail)
    monkeypatch.setattr(conv_columns.workspace, "lease", fail)  # nor col2im's buffer
    x, w = _random((2, 6, 4, 4), np.float32), _random((8, 3, 1, 1), np.float32, 1)
    with kernels.using("numba"):
        check_against_torch(lambda a, b: F.conv2d(a, b, groups=2), lambda a, b: TF.conv2d(a, b, groups=2), [x, w])


def t(*shape, dtype=np.float32):
    return mr.tensor(np.ones(shape, dtype), requires_grad=True)


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.conv2d(t(1, 3, 8, 8), t(4, 2, 3, 3)), ShapeError, ["conv2d", "3 channels", "expects 2"]),
    (lambda: F.conv2d(t(1, 3, 2, 2), t(4, 3, 5, 5)), ShapeError, ["conv2d", "5x5", "larger", "2x2"]),
    (lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), stride=0), ValueError, ["conv2d", "stride", "at least 1"]),
    (lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), stride=-2), ValueError, ["conv2d", "stride"]),
    (lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), padding=-1), ValueError, ["conv2d", "padding"]),
    (lambda: F.conv2d(t(3, 8, 8), t(4, 3, 3, 3)), ShapeError, ["conv2d", "4-D", "(3, 8, 8)"]),
    (lambda: F.conv2d(t(1, 4, 8, 8), t(4, 2, 3, 3), groups=3), ShapeError, ["conv2d", "groups=3"]),
    (lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3, dtype=np.float64)), DTypeError, ["conv2d", "float32", "float64"]),
    (lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), t(5)), ShapeError, ["conv2d", "bias", "(4,)"]),
    (lambda: F.max_pool2d(t(1, 1, 2, 2), 3), ShapeError, ["max_pool2d", "3x3", "larger", "2x2"]),
    (lambda: F.max_pool2d(t(1, 1, 8, 8), 2, stride=0), ValueError, ["max_pool2d", "stride"]),
    (lambda: F.max_pool2d(t(1, 1, 8, 8), 2, padding=2), ValueError, ["max_pool2d", "half the kernel"]),
    (lambda: F.avg_pool2d(t(8, 8), 2), ShapeError, ["avg_pool2d", "4-D", "(8, 8)"]),
    (lambda: F.adaptive_avg_pool2d(t(1, 1, 2, 2), 3), ShapeError, ["adaptive_avg_pool2d", "(3, 3)"]),
    (lambda: F.batch_norm(t(2, 3, 4, 4), None, None, t(4), t(3), True), ShapeError, ["batch_norm", "weight", "(3,)"]),
    (lambda: F.batch_norm(t(1, 3, 1, 1), None, None, None, None, True), ValueError, ["more than one value"]),
    (lambda: F.batch_norm(t(2, 3), None, None, None, None, False), ValueError, ["running_mean"]),
    (lambda: F.batch_norm(t(2, 3), np.zeros(3), np.ones(3), None, None, False), DTypeError, ["float64", "float32"]),
    (lambda: F.residual_add(t(1, 4, 4, 4), t(1, 8, 2, 2)), ShapeError, ["residual_add", "(1, 4, 4, 4)", "(1, 8, 2, 2)"]),
    (lambda: F.shortcut_a(t(1, 8, 4, 4), 4, 2), ShapeError, ["shortcut_a", "out_channels (4)", "(8)"]),
    (lambda: F.shortcut_a(t(1, 8, 4, 4), 16, 0), ValueError, ["shortcut_a", "stride"]),
])
def test_bad_input_to_kernel_ops_is_named_before_any_kernel_runs(call, error, words, monkeypatch):
    monkeypatch.setattr(kernels, "pick", lambda *a: pytest.fail("a kernel was picked for bad input"))
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)
