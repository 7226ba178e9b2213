"""Every op in the catalog: float64 gradcheck and float32 parity with torch on hypothesis-drawn shapes.

An op table x check kind, like PyTorch's op tests: each row is the minires op (from minires.op_catalog) and
its torch twin below.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, strategies as st

import minires as mr
from minires import op_catalog
from parity import check_against_torch


def _dims(axis, x):
    return tuple(range(x.ndim)) if axis is None else axis


TORCH_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "neg": lambda x: -x,
    "pow": lambda x, exponent: x ** exponent,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "sum": lambda x, axis, keepdims: x.sum(dim=_dims(axis, x), keepdim=keepdims),
    "mean": lambda x, axis, keepdims: x.mean(dim=_dims(axis, x), keepdim=keepdims),
    "max": lambda x, axis, keepdims: torch.amax(x, dim=_dims(axis, x), keepdim=keepdims),
    "reshape": lambda x, shape: x.reshape(shape),
    "transpose": lambda x, axes: x.permute(axes),
    "flatten": lambda x, start_dim, end_dim: torch.flatten(x, start_dim, end_dim),
    "getitem": lambda x, index: x[index],
    "getitem_array": lambda x, index: x[torch.from_numpy(index)],
    "cat": lambda *ts, axis: torch.cat(ts, dim=axis),
    "pad": lambda x, pad, value: TF.pad(x, pad, value=value),
    "matmul": torch.matmul,
    "linear": TF.linear,
    "log_softmax": lambda x, axis: torch.log_softmax(x, dim=axis),
    "softmax": lambda x, axis: torch.softmax(x, dim=axis),
    "cross_entropy": lambda x, target, reduction: TF.cross_entropy(x, torch.from_numpy(target),
                                                                     reduction=reduction),
}

CASE_NAMES = op_catalog.names()


def test_every_catalog_op_has_a_torch_twin():
    assert sorted(TORCH_OPS) == CASE_NAMES


def shapes_for(case):
    return st.lists(st.integers(1, 4), min_size=case.ndim[0], max_size=case.ndim[1]).map(tuple)


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("mode", ["full", "directional"])
def test_gradcheck_float64(name, mode):
    case = op_catalog.get(name)

    @given(shape=shapes_for(case), seed=st.integers(0, 2**16))
    def check(shape, seed):
        op_catalog.gradcheck_case(case, shape=shape, seed=seed, mode=mode, raise_exception=True)

    check()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_matches_torch_float32(name):
    case = op_catalog.get(name)

    @given(shape=shapes_for(case), seed=st.integers(0, 2**16))
    def check(shape, seed):
        inputs, params = case.draw(np.random.default_rng(seed), shape)
        check_against_torch(lambda *ts: case.fn(*ts, **params), lambda *ts: TORCH_OPS[name](*ts, **params),
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
    assert np.isfinite(loss.item()) and np.isfinite(x.grad).all()


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
