"""Non-finite values never hide: every kernel flavour treats NaN and +-inf exactly as its NumPy reference
does, and the ops built on them as PyTorch does (a NaN output passes its gradient; max-pool picks NaN)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minires as mr
from minires import F, kernels

pytestmark = [pytest.mark.skipif(not kernels.numba_available(), reason="numba is not installed"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]  # NumPy warns on every NaN it makes


def sprinkled(shape, seed, dtype=np.float32):
    """Normal values with NaN, +inf and -inf at random places (about one in eight each)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    pick = rng.random(shape)
    x[pick < 0.125], x[(pick >= 0.125) & (pick < 0.25)], x[(pick >= 0.25) & (pick < 0.375)] = np.nan, np.inf, -np.inf
    return x


SHAPE = (2, 3, 6, 5)
C = SHAPE[1]
# kernel -> (its arguments with non-finite values), one call per kernel in the registry
CALLS = {
    "im2col": lambda: (sprinkled(SHAPE, 0), 3, 3, 2, 1, 1, 1, 1, 1),
    "col2im": lambda: (sprinkled((2, 3, 3, 3, 3, 5), 1), 6, 5, 2, 1, 1, 1, 1, 1),
    "im2col_rows": lambda: (sprinkled(SHAPE, 71), 3, 3, 2, 1, 1, 1, 1, 1),
    "col2im_rows": lambda: (sprinkled((3, 3, 3, 2, 3, 5), 72), 6, 5, 2, 1, 1, 1, 1, 1),
    "max_pool_forward": lambda: (sprinkled(SHAPE, 2), 3, 3, 1, 1, 1, 1),
    "max_pool_backward": lambda: (sprinkled((2, 3, 3, 3), 3),
                                  np.random.default_rng(3).integers(0, 30, (2, 3, 3, 3)), 6, 5, 3, 3, 2, 2, 1, 1),
    "avg_pool_forward": lambda: (sprinkled(SHAPE, 4), 3, 3, 2, 2, 1, 1),
    "avg_pool_backward": lambda: (sprinkled((2, 3, 3, 3), 5), 6, 5, 3, 3, 2, 2, 1, 1),
    "global_avg_pool_forward": lambda: (sprinkled(SHAPE, 6),),
    "global_avg_pool_backward": lambda: (sprinkled((2, 3, 1, 1), 7), 6, 5),
    "adaptive_avg_pool_forward": lambda: (sprinkled(SHAPE, 8), 4, 3),
    "adaptive_avg_pool_backward": lambda: (sprinkled((2, 3, 4, 3), 9), 6, 5),
    "batchnorm_forward_train": lambda: (sprinkled((4, C, 30), 10), np.ones(C, np.float32), np.zeros(C, np.float32),
                                        1e-5),
    "batchnorm_forward_eval": lambda: (sprinkled((4, C, 30), 11), sprinkled((C,), 12), sprinkled((C,), 13),
                                       sprinkled((C,), 14), np.abs(sprinkled((C,), 15)), 1e-5),
    "batchnorm_backward": lambda: (sprinkled((4, C, 30), 16), sprinkled((4, C, 30), 17), sprinkled((C,), 18),
                                   sprinkled((C,), 19), np.abs(sprinkled((C,), 20))),
    "batchnorm_backward_eval": lambda: (sprinkled((4, C, 30), 27), sprinkled((4, C, 30), 28), sprinkled((C,), 29),
                                        sprinkled((C,), 30), np.abs(sprinkled((C,), 31))),
    "max_pool_channels_last_forward": lambda: (sprinkled((2, 6, 5, 3), 56), 3, 3, 1, 1, 1, 1),
    "max_pool_channels_last_backward": lambda: (sprinkled((2, 3, 3, 3), 57),
                                                np.random.default_rng(57).integers(0, 30, (2, 3, 3, 3)), 6, 5, 3, 3, 2, 2, 1, 1),
    "sgd_update": lambda: (sprinkled((40,), 53), sprinkled((40,), 54), sprinkled((40,), 55), np.float32(0.1),
                           np.float32(0.9), np.float32(1.0), np.float32(5e-4), True, False),
    "residual_add_forward": lambda: (sprinkled(SHAPE, 21), sprinkled(SHAPE, 22), True),
    "residual_add_backward": lambda: (sprinkled(SHAPE, 23), sprinkled(SHAPE, 24), True),
    "shortcut_a_forward": lambda: (sprinkled(SHAPE, 25), 7, 2, 2),
    "shortcut_a_backward": lambda: (sprinkled((2, 7, 3, 3), 26), 3, 6, 5, 2, 2),
    "batchnorm_channels_last_forward_train": lambda: (sprinkled((120, C), 34), np.ones(C, np.float32),
                                                      np.zeros(C, np.float32), 1e-5),
    "batchnorm_channels_last_forward_eval": lambda: (sprinkled((120, C), 35), sprinkled((C,), 36), sprinkled((C,), 37),
                                                     sprinkled((C,), 38), np.abs(sprinkled((C,), 39)), 1e-5),
    "batchnorm_channels_last_backward": lambda: (sprinkled((120, C), 40), sprinkled((120, C), 41), sprinkled((C,), 42),
                                                 sprinkled((C,), 43), np.abs(sprinkled((C,), 44))),
    "batchnorm_channels_last_backward_eval": lambda: (sprinkled((120, C), 45), sprinkled((120, C), 46),
                                                      sprinkled((C,), 47), sprinkled((C,), 48),
                                                      np.abs(sprinkled((C,), 49))),
    "batchnorm_relu_channels_last_forward_train": lambda: (sprinkled((120, C), 52), np.ones(C, np.float32),
                                                           np.zeros(C, np.float32), 1e-5, sprinkled((120, C), 53)),
    "batchnorm_relu_channels_last_forward_eval": lambda: (sprinkled((120, C), 54), sprinkled((C,), 55),
                                                          sprinkled((C,), 56), sprinkled((C,), 57),
                                                          np.abs(sprinkled((C,), 58)), 1e-5, None),
    "batchnorm_relu_channels_last_backward": lambda: (sprinkled((120, C), 59), sprinkled((120, C), 60),
                                                      sprinkled((120, C), 61), sprinkled((C,), 62), sprinkled((C,), 63),
                                                      np.abs(sprinkled((C,), 64)), True),
    "batchnorm_relu_channels_last_backward_eval": lambda: (sprinkled((120, C), 65), sprinkled((120, C), 66),
                                                           sprinkled((120, C), 67), sprinkled((C,), 68),
                                                           sprinkled((C,), 69), np.abs(sprinkled((C,), 70)), True),
    "relu_backward": lambda: (sprinkled(SHAPE, 50), sprinkled(SHAPE, 51)),
    "batchnorm_relu_forward_train": lambda: (sprinkled((4, C, 30), 73), np.ones(C, np.float32), np.zeros(C, np.float32),
                                             1e-5, sprinkled((4, C, 30), 74)),
    "batchnorm_relu_forward_eval": lambda: (sprinkled((4, C, 30), 75), sprinkled((C,), 76), sprinkled((C,), 77),
                                            sprinkled((C,), 78), np.abs(sprinkled((C,), 79)), 1e-5, None),
    "batchnorm_relu_backward": lambda: (sprinkled((4, C, 30), 80), sprinkled((4, C, 30), 81), sprinkled((4, C, 30), 82),
                                        sprinkled((C,), 83), sprinkled((C,), 84), np.abs(sprinkled((C,), 85)), True),
    "batchnorm_relu_backward_eval": lambda: (sprinkled((4, C, 30), 86), sprinkled((4, C, 30), 87),
                                             sprinkled((4, C, 30), 88), sprinkled((C,), 89), sprinkled((C,), 90),
                                             np.abs(sprinkled((C,), 91)), True),
    "count_non_finite": lambda: ([sprinkled((40,), 92), sprinkled((3, 5), 93)],),
    "sgd_update_many": lambda: ([sprinkled((40,), 94)], [sprinkled((40,), 95)], [sprinkled((40,), 96)], np.float32(0.1),
                                np.float32(0.9), np.float32(1.0), np.float32(5e-4), True, [False]),
    "shortcut_a_forward_channels_last": lambda: (sprinkled((2, 6, 5, 3), 32), 7, 2, 2),
    "shortcut_a_backward_channels_last": lambda: (sprinkled((2, 3, 3, 7), 33), 3, 6, 5, 2, 2),
}


CONV2D = {"conv2d_forward", "conv2d_backward"}  # one pair, checked together below


def test_every_kernel_has_a_non_finite_case():
    assert set(CALLS) | CONV2D == set(kernels.registered())


@pytest.mark.skipif(not kernels.numba_available(), reason="needs numba")
@pytest.mark.parametrize("groups", [1, 3])
def test_numba_conv2d_treats_nan_and_inf_as_the_reference_does(groups):
    """y, dx, dW and db of im2col.py's convolution in both flavours, with NaN and inf in x, W and gy."""
    from minires.functional.window import sliding_window
    window = sliding_window("conv2d", SHAPE, (3, 2), (2, 1), 1)
    outputs = {}
    for flavour in ("reference", "numba"):
        x, weight, bias = sprinkled(SHAPE, 97), sprinkled((6, C // groups, 3, 2), 98), sprinkled((6,), 99)
        y, saved = kernels.implementation("conv2d_forward", flavour)(x, weight, bias, window, groups)
        grads = kernels.implementation("conv2d_backward", flavour)(saved, sprinkled(y.shape, 100), (True,) * 3)
        outputs[flavour] = (y, *grads)
    for i, (ours, theirs) in enumerate(zip(outputs["numba"], outputs["reference"])):
        assert_same_non_finite(ours, theirs, f"conv2d output {i}")


def assert_same_non_finite(ours, reference, what):
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert np.array_equal(np.isnan(ours), np.isnan(reference)), f"{what}: NaN in different places"
    assert np.array_equal(np.isposinf(ours), np.isposinf(reference)), f"{what}: +inf in different places"
    assert np.array_equal(np.isneginf(ours), np.isneginf(reference)), f"{what}: -inf in different places"
    finite = np.isfinite(reference)
    np.testing.assert_allclose(ours[finite], reference[finite], rtol=1e-5, atol=1e-5, err_msg=what)


WITH_NUMBA = sorted(op for op in CALLS if kernels.implementation(op, "numba") is not None)


GPU_ONLY = {"im2col_rows", "col2im_rows", "batchnorm_relu_forward_train", "batchnorm_relu_forward_eval",
            "batchnorm_relu_backward", "batchnorm_relu_backward_eval", "count_non_finite", "sgd_update_many"}


def test_only_adaptive_pooling_channels_last_option_a_and_the_gpu_kernels_run_their_reference_on_every_flavour():
    """(The GPU_ONLY kernels serve the GPU path only: on the CPU nothing calls them in a step, except
    count_non_finite, whose reference is one reduction per array, as the per-tensor check it replaced.)"""
    assert set(CALLS) - set(WITH_NUMBA) == {"adaptive_avg_pool_forward", "adaptive_avg_pool_backward",
                                            "shortcut_a_forward_channels_last",
                                            "shortcut_a_backward_channels_last"} | GPU_ONLY


@pytest.mark.parametrize("op", WITH_NUMBA)
def test_numba_treats_nan_and_inf_as_the_reference_does(op):
    args = CALLS[op]()
    numba_out = kernels.implementation(op, "numba")(*args)
    reference_out = kernels.implementation(op, "reference")(*CALLS[op]())
    if not isinstance(reference_out, tuple):
        numba_out, reference_out = (numba_out,), (reference_out,)
    assert len(numba_out) == len(reference_out)
    for i, (ours, theirs) in enumerate(zip(numba_out, reference_out)):
        assert_same_non_finite(ours, theirs, f"{op} output {i}")


@pytest.fixture(params=["reference", "numba"])
def flavour(request, monkeypatch):
    monkeypatch.setenv("MINIRES_KERNELS", request.param)
    return request.param


def torch_and_minires_pool_gradients(x, upstream, *window):
    ours = mr.tensor(x, requires_grad=True)
    F.max_pool2d(ours, *window).backward(upstream)
    theirs = torch.tensor(x, requires_grad=True)
    TF.max_pool2d(theirs, *window).backward(torch.from_numpy(upstream))
    return ours.grad, theirs.grad.numpy()


def test_max_pool_gradient_with_minus_inf_next_to_padding_matches_torch(flavour):
    """A padded cell must never win, also against a real -inf: a window of -inf sends its gradient to its
    first real pixel (the reference kernel used to pick the padding and wrap the index onto another pixel)."""
    x = np.full((1, 1, 3, 3), -np.inf, np.float32)
    x[0, 0, 2, 2] = 1
    upstream = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    ours, theirs = torch_and_minires_pool_gradients(x, upstream, 3, 1, 1)
    assert theirs.ravel().tolist() == [7, 3, 0, 7, 0, 0, 0, 0, 28]
    np.testing.assert_array_equal(ours, theirs)


def test_max_pool_two_nans_in_a_window_send_the_gradient_to_the_last(flavour):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan  # both in the first 2x2 window; the later one in window order wins
    ours, theirs = torch_and_minires_pool_gradients(x, np.ones((1, 1, 2, 2), np.float32), 2, 2)
    assert theirs[0, 0, 1, 0] == 1 and theirs[0, 0, 0, 1] == 0
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("seed", range(3))
def test_max_pool_matches_torch_on_non_finite_inputs(flavour, seed):
    x = sprinkled((2, 2, 7, 6), seed)
    upstream = np.random.default_rng(seed).standard_normal((2, 2, 7, 6)).astype(np.float32)
    ours, theirs = torch_and_minires_pool_gradients(x, upstream, 3, 1, 1)
    np.testing.assert_array_equal(ours, theirs)


def test_relu_and_the_join_propagate_nan_forward_and_pass_its_gradient_as_torch(flavour):
    x = np.array([np.nan, -1.0, 0.0, 2.0, np.inf, -np.inf], np.float32)
    upstream = np.array([1.0, np.nan, np.nan, 3.0, 4.0, 5.0], np.float32)
    theirs = torch.tensor(x, requires_grad=True)
    expected_y = torch.relu(theirs)
    expected_y.backward(torch.from_numpy(upstream))
    for op in (lambda t: F.relu(t), lambda t: F.residual_add(t, mr.tensor(np.zeros_like(x)), relu=True)):
        ours = mr.tensor(x, requires_grad=True)
        y = op(ours)
        y.backward(upstream)
        np.testing.assert_array_equal(y.numpy(), expected_y.detach().numpy())
        np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())


def test_pow_zero_at_zero_has_zero_gradient():
    """d x**0 / dx = 0, also at x = 0 (p * x**(p-1) is 0 * inf = NaN there), as torch."""
    x = mr.tensor(np.array([0.0, 1.5, -2.0]), requires_grad=True)
    (x ** 0).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype, a, b", [(np.float32, 1e-20, 1e-23), (np.float32, 1e-20, 3e-22),
                                         (np.float64, 1e-100, 1e-200)])
def test_div_gradient_for_tiny_denominators_does_not_underflow(dtype, a, b):
    """d(a/b)/db = -(a/b)/b; computing -a/(b*b) overflows b*b to 0 first (b = 1e-23 in float32)."""
    ours_a, ours_b = mr.tensor(np.array([a], dtype), requires_grad=True), mr.tensor(np.array([b], dtype),
                                                                                    requires_grad=True)
    (ours_a / ours_b).backward(np.ones(1, dtype))
    theirs_b = torch.tensor([b], dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)
    (torch.tensor([a], dtype=theirs_b.dtype) / theirs_b).backward(torch.ones(1, dtype=theirs_b.dtype))
    assert np.isfinite(ours_b.grad.numpy()).all()
    np.testing.assert_allclose(ours_b.grad, theirs_b.grad.numpy(), rtol=1e-6)
