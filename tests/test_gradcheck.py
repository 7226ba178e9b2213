"""The gradient checker itself must catch wrong gradients, and must not be fooled by kinks."""
import numpy as np
import pytest

import minires as mr
from minires import F
from minires.errors import DTypeError
from minires.function import Function
from minires.verify.gradcheck import GradcheckError, gradcheck


class _WrongSquare(Function):
    """x^2 with a wrong backward (x instead of 2x)."""
    name = "wrong_square"

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, g):
        (x,) = self.saved_tensors
        return x * g


class _OffByOneSigned(Function):
    """A backward that is right except for one element's sign: directions must still find it."""
    name = "one_wrong_element"

    def forward(self, x):
        return 3 * x

    def backward(self, g):
        grad = 3 * g
        grad.reshape(-1)[0] *= -1
        return grad


def _inputs(*shape, seed=0):
    return [np.random.default_rng(seed).standard_normal(shape)]


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_a_wrong_backward_fails_with_a_report(mode):
    with pytest.raises(GradcheckError) as info:
        gradcheck(_WrongSquare.apply, _inputs(3, 4), mode=mode, name="wrong_square")
    report = info.value.report
    assert not report.passed and report.checked > 0
    assert report.max_rel_error > 0.3  # x vs 2x: relative error 1/2
    assert "wrong_square" in str(info.value) and "analytic" in str(info.value)
    if mode == "full":
        x = _inputs(3, 4)[0]
        i = report.worst_index
        assert report.worst_input == 0
        # The report names the element and both values: analytic x*v vs numeric 2x*v at that element.
        assert report.worst_numeric == pytest.approx(2 * report.worst_analytic, rel=1e-5)
        assert abs(x[i]) > 0


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_one_wrong_element_is_found(mode):
    with pytest.raises(GradcheckError):
        gradcheck(_OffByOneSigned.apply, _inputs(4, 5), mode=mode)


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_a_correct_backward_passes_with_tiny_errors(mode):
    report = gradcheck(lambda x, w: F.linear(x, w).tanh(), _inputs(3, 4) + _inputs(5, 4, seed=1), mode=mode)
    assert report.passed and report.max_rel_error < 1e-6 and report.kinks == 0


def test_large_inputs_are_sampled_in_full_mode():
    report = gradcheck(F.exp, _inputs(40, 40), max_elements=50)
    assert report.passed and report.checked == 50


def test_fixed_inputs_on_a_relu_kink_are_skipped_not_failed():
    x = np.array([0.0, 1.0, -1.0, 2.0])
    report = gradcheck(F.relu, [x])
    assert report.passed and report.kinks == 1 and report.checked == 3


def test_fixed_inputs_with_tied_maxima_are_skipped_not_failed():
    x = np.array([[1.0, 1.0, 0.5], [0.2, 0.9, 0.1]])
    report = gradcheck(lambda t: t.max(axis=1), [x])
    assert report.passed and report.kinks == 2


def test_drawn_inputs_on_a_kink_are_redrawn():
    draws = []

    def draw(rng):
        draws.append(1)
        return [np.zeros(3)] if len(draws) == 1 else [rng.standard_normal(3) + 5]

    report = gradcheck(F.relu, draw)
    assert report.redraws == 1 and report.kinks == 0 and report.passed


def test_all_points_on_kinks_is_a_failure_not_a_pass():
    report = gradcheck(F.relu, [np.zeros(3)], raise_exception=False)
    assert not report.passed and report.checked == 0 and "no point" in report.summary()


def test_nan_gradients_fail():
    class NaNGrad(Function):
        def forward(self, x):
            return x * 1

        def backward(self, g):
            return g * np.nan

    report = gradcheck(NaNGrad.apply, _inputs(3), raise_exception=False)
    assert not report.passed and report.max_abs_error == float("inf")


def test_float32_inputs_are_refused():
    with pytest.raises(DTypeError, match="float64"):
        gradcheck(F.exp, [np.ones(3, np.float32)])


def test_an_op_that_drops_to_float32_is_caught():
    with pytest.raises(DTypeError, match="does not keep float64"):
        gradcheck(lambda x: x.float(), _inputs(3))


def test_upstream_gradient_is_random_so_batch_norm_like_bugs_show():
    """sum(x - mean(x)) has zero gradient: with v = ones any wrong backward of centring would pass."""
    class WrongCentre(Function):
        def forward(self, x):
            return x - x.mean()

        def backward(self, g):
            return g * 0  # right only for g = ones

    with pytest.raises(GradcheckError):
        gradcheck(WrongCentre.apply, _inputs(6))


def test_tensor_inputs_are_accepted():
    report = gradcheck(F.sigmoid, [mr.tensor(np.linspace(-2, 2, 5))])
    assert report.passed
