"""Every op in the catalog: float64 gradcheck and float32 parity with torch on hypothesis-drawn shapes.

An op table x check kind, like PyTorch's op tests: each row is the minires op and its input draw (from
minires.verify.op_catalog) and its torch twin (the case's ``twin``).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, strategies as st

import minires as mr
from minires.verify import op_catalog
from against_torch import check_against_torch


def _dims(axis, x):
    return tuple(range(x.ndim)) if axis is None else axis


# Ops whose forward and backward run hand-written kernels: their parity is checked with every CPU flavour.
KERNEL_OPS = {name for name in op_catalog.names() if op_catalog.get(name).kernels}
FLAVOURS = ["reference", "numba"]

CASE_NAMES = op_catalog.names()


def test_every_catalog_op_has_a_torch_twin():
    assert all(callable(op_catalog.get(name).twin) for name in CASE_NAMES)
    assert KERNEL_OPS == {"conv2d", "batch_norm", "batch_norm_eval", "max_pool2d", "avg_pool2d",
                          "adaptive_avg_pool2d", "residual_add", "shortcut_a"}


def shapes_for(case):
    def sizes(rank):
        return st.tuples(*(st.integers(case.min_sizes[i], case.max_sizes[i]) for i in range(rank)))
    return st.integers(*case.ndim).flatmap(sizes)


def _float32_params(params):
    """Array parameters (running statistics) in float32, to sit beside float32 inputs."""
    return {k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 else v
            for k, v in params.items()}


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("mode", ["full", "directional"])
def test_gradcheck_float64(name, mode):
    case = op_catalog.get(name)

    @given(shape=shapes_for(case), seed=st.integers(0, 2**16))
    def check(shape, seed):
        op_catalog.gradcheck_case(case, shape=shape, seed=seed, mode=mode, raise_exception=True)

    check()


PARITY_CASES = [(name, flavour) for name in CASE_NAMES
                for flavour in (FLAVOURS if name in KERNEL_OPS else ["default"])]


@pytest.mark.parametrize("name, flavour", PARITY_CASES)
def test_matches_torch_float32(name, flavour, monkeypatch):
    if flavour != "default":
        monkeypatch.setenv("MINIRES_KERNELS", flavour)
    case = op_catalog.get(name)

    @given(shape=shapes_for(case), seed=st.integers(0, 2**16))
    def check(shape, seed):
        inputs, params = case.draw(np.random.default_rng(seed), shape)
        params = _float32_params(params)
        check_against_torch(lambda *ts: case.fn(*ts, **params), lambda *ts: case.twin(*ts, **params),
                            inputs, seed=seed)

    check()


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_cross_entropy_is_stable_for_huge_logits(scale):
    logits = np.array([[1.0, 0.0, -1.0], [0.5, 0.2, 0.1]], np.float32) * scale
    target = np.array([2, 0])
    check_against_torch(lambda x: mr.F.cross_entropy(x, target),
                        lambda x: TF.cross_entropy(x, torch.from_numpy(target)), [logits])
    x = mr.tensor(logits, requires_grad=True)
    loss = mr.F.cross_entropy(x, target)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("expression", [
    lambda x: x * 2, lambda x: 2 * x, lambda x: x + 1.5, lambda x: 1.5 - x, lambda x: x / 3,
    lambda x: 3 / x, lambda x: x ** 2, lambda x: 2 ** x, lambda x: -x, lambda x: (x @ x.T).sum(0),
])
def test_python_scalars_keep_float32_and_match_torch(expression):
    values = np.random.default_rng(1).uniform(0.5, 2.0, (3, 3))
    check_against_torch(expression, expression, [values])
    assert expression(mr.tensor(values.astype(np.float32))).dtype == np.float32


def test_tensor_methods_match_functional_ops():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    check_against_torch(lambda t: t.transpose(2, 0, 1).reshape(4, 6).T.flatten(0).exp().sum(),
                        lambda t: t.permute(2, 0, 1).reshape(4, 6).T.flatten(0).exp().sum(), [x])
    check_against_torch(lambda t: t.max(axis=1).tanh().sigmoid().mean(),
                        lambda t: t.amax(dim=1).tanh().sigmoid().mean(), [x])
    check_against_torch(lambda t: t[0, 1:, ::2].relu().sqrt(), lambda t: t[0, 1:, ::2].relu().sqrt(), [x * x])


@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), ((0, 2), True)])
def test_max_shares_the_gradient_among_ties_like_torch_amax(axis, keepdims):
    """The catalog draws distinct values; here every maximum is tied 2-4 ways."""
    x = np.array([[[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], [[3.0, 3.0, -1.0], [2.0, 2.0, 2.0]]], np.float32)
    check_against_torch(lambda t: t.max(axis=axis, keepdims=keepdims),
                        lambda t: torch.amax(t, dim=_dims(axis, t), keepdim=keepdims), [x])


@pytest.mark.parametrize("base", [1.0, 0.5, 3.0])
def test_a_number_to_the_power_of_a_tensor_matches_torch_for_any_positive_base(base):
    """base ** x for base = 1 too (constant 1, zero gradient), a base below 1 and above."""
    values = np.random.default_rng(3).uniform(-2.0, 2.0, (3, 4))
    check_against_torch(lambda t: base ** t, lambda t: base ** t, [values])
