"""The catalog of differentiable ops that ``minires gradcheck`` checks, and that the test suite checks against
finite differences and PyTorch.

Each case draws float64 inputs for a given primary shape (kept in the op's domain: positive for log and
sqrt, denominators away from zero, well-separated values for max) plus the op's non-tensor parameters (axes,
pad sizes, permutations, targets, strides), all from one ``numpy.random.Generator``. Its ``labels`` name the
options a draw exercises (``stride>1``, ``reduction=sum``, ...) and ``covers`` lists those that
``minires gradcheck --all`` must reach over its draws.

Each case also carries its PyTorch twin: the same call written with torch (imported only when a twin runs).
Two checks run on a case: ``gradcheck_case`` (backward against float64 finite differences) and
``compare_with_torch`` (forward, gradients and in-place state against the op's PyTorch twin in float64, which
also catches an op whose forward and backward are consistently wrong).
"""
import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import functional as F
from ..errors import ArgumentError, UnknownNameError
from ..tensor import Tensor


@dataclass(frozen=True)
class OpCase:
    name: str
    fn: Callable  # fn(*tensors, **params) -> Tensor
    draw: Callable  # draw(rng, shape) -> (list of float64 arrays, params dict)
    shape: tuple  # the default primary shape
    ndim: tuple = (1, 4)  # smallest and largest rank the case accepts
    max_sizes: tuple = (4, 4, 4, 4)  # the largest size per axis that tests draw
    min_sizes: tuple = (1, 1, 1, 1)  # the smallest size per axis the op accepts
    kernels: bool = False  # runs hand-written kernels: checked with every kernel flavour
    labels: Callable = None  # labels(inputs, params) -> set of option names this draw exercises
    covers: tuple = ()  # the labels that gradcheck --all's draws must cover
    twin: Callable = None  # the same call written with torch: twin(*torch_tensors, **params) (see compare_with_torch)

    def accepts(self, shape):
        return (self.ndim[0] <= len(shape) <= self.ndim[1]
                and all(n >= low for n, low in zip(shape, self.min_sizes)))

    def requirement(self):
        """What ``accepts`` asks of a shape, in words: 'needs a rank-4 shape with sizes at least (1, 1, 3, 3)'."""
        low, high = self.ndim
        rank = f"rank-{low}" if low == high else f"rank-{low} to rank-{high}"
        sizes = tuple(self.min_sizes[:high])
        return f"needs a {rank} shape" + (f" with sizes at least {sizes}" if any(n > 1 for n in sizes) else "")


def _normal(rng, shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def _distinct(rng, shape):
    """Values at least 0.1 apart, so that no max has a tie within any finite-difference step."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) * 0.1 + rng.uniform(0, 0.01)


def _broadcast_partner(rng, shape):
    """A shape that broadcasts against ``shape``: some axes set to 1, maybe some leading axes dropped."""
    partner = [1 if rng.random() < 0.4 else n for n in shape]
    return tuple(partner[int(rng.integers(0, len(partner) + 1)) if rng.random() < 0.3 else 0:])


def _axis_choice(rng, ndim):
    """None, one axis (maybe negative) or a tuple of axes, as users write them."""
    kind = rng.integers(0, 3)
    if kind == 0:
        return None
    if kind == 1:
        return int(rng.integers(-ndim, ndim))
    count = int(rng.integers(1, ndim + 1))
    return tuple(int(a) for a in sorted(rng.choice(ndim, count, replace=False)))


def _unary(sample):
    return lambda rng, shape: ([sample(rng, shape)], {})


def _binary(sample_b):
    return lambda rng, shape: ([_normal(rng, shape), sample_b(rng, _broadcast_partner(rng, shape))], {})


def _nonzero(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * _positive(rng, shape)


def _draw_pow(rng, shape):
    return [_positive(rng, shape)], {"exponent": float(rng.choice([2.0, 3.0, 0.5, -1.5]))}


def _draw_reduction(sample):
    def draw(rng, shape):
        return [sample(rng, shape)], {"axis": _axis_choice(rng, len(shape)), "keepdims": bool(rng.random() < 0.5)}
    return draw


def _draw_reshape(rng, shape):
    size = int(np.prod(shape))
    target = rng.choice([0, 1, 2])
    new_shape = [(size,), tuple(reversed(shape)), (-1, shape[-1])][target]
    return [_normal(rng, shape)], {"shape": new_shape}


def _draw_transpose(rng, shape):
    return [_normal(rng, shape)], {"axes": tuple(int(a) for a in rng.permutation(len(shape)))}


def _draw_flatten(rng, shape):
    start = int(rng.integers(0, len(shape)))
    return [_normal(rng, shape)], {"start_dim": start, "end_dim": int(rng.integers(start, len(shape)))}


def _draw_getitem(rng, shape):
    index = []
    for n in shape:
        if n > 1 and rng.random() < 0.25:
            index.append(int(rng.integers(-n, n)))
        else:
            start = int(rng.integers(0, n))
            index.append(slice(start, int(rng.integers(start + 1, n + 1)), int(rng.integers(1, 3))))
    return [_normal(rng, shape)], {"index": tuple(index)}


def _draw_getitem_array(rng, shape):
    """Integer index arrays along axis 0 that repeat rows: their gradients must add up."""
    rows = rng.integers(0, shape[0], size=shape[0] + 2)
    return [_normal(rng, shape)], {"index": rows}


def _draw_cat(rng, shape):
    axis = int(rng.integers(0, len(shape)))
    arrays = []
    for _ in range(int(rng.integers(2, 4))):
        piece = list(shape)
        piece[axis] = int(rng.integers(1, 4))
        arrays.append(_normal(rng, tuple(piece)))
    return arrays, {"axis": axis}


def _draw_pad(rng, shape):
    pairs = int(rng.integers(1, len(shape) + 1))
    return [_normal(rng, shape)], {"pad": tuple(int(p) for p in rng.integers(0, 3, 2 * pairs)),
                                   "value": float(rng.choice([0.0, 1.5]))}


def _draw_matmul(rng, shape):
    k = shape[-1]
    n = int(rng.integers(1, 5))
    b_shape = rng.choice(4)
    if b_shape == 0:
        b = (k,)  # matrix-vector (or a dot product when a is 1-D)
    elif b_shape == 1 or len(shape) < 3:
        b = (k, n)
    else:
        b = tuple(1 if rng.random() < 0.5 else m for m in shape[:-2]) + (k, n)  # batched, broadcast batch axes
    return [_normal(rng, shape), _normal(rng, b)], {}


def _draw_linear(rng, shape):
    out_features = int(rng.integers(1, 6))
    return [_normal(rng, shape), _normal(rng, (out_features, shape[-1])), _normal(rng, (out_features,))], {}


def _draw_softmax(rng, shape):
    return [_normal(rng, shape, 2.0)], {"axis": int(rng.integers(-len(shape), len(shape)))}


def _draw_cross_entropy(rng, shape):
    n, c = shape
    return [_normal(rng, shape, 2.0)], {"target": rng.integers(0, c, size=n),
                                        "reduction": str(rng.choice(["mean", "sum", "none"]))}


def _fit_window(rng, size, max_kernel, allow_dilation):
    """(kernel, padding, dilation) for one axis whose window fits the padded input."""
    kernel = int(rng.integers(1, max_kernel + 1))
    padding = int(rng.integers(0, kernel // 2 + 1))
    dilation = int(rng.integers(1, 3)) if allow_dilation else 1
    if dilation * (kernel - 1) + 1 > size + 2 * padding:
        dilation = 1
        kernel = min(kernel, size + 2 * padding)
        padding = min(padding, kernel // 2)
        kernel = min(kernel, size + 2 * padding)
    return kernel, padding, dilation


def _window(rng, shape, max_kernel=3, allow_dilation=False):
    (kh, ph, dh), (kw, pw, dw) = (_fit_window(rng, n, max_kernel, allow_dilation) for n in shape[2:])
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))  # includes stride > kernel
    return (kh, kw), stride, (ph, pw), (dh, dw)


def _draw_conv2d(rng, shape):
    n, c, h, w = shape
    kernel, stride, padding, dilation = _window(rng, shape, allow_dilation=True)
    groups = int(rng.choice([g for g in (1, 2, 3, 4) if c % g == 0]))
    out_channels = groups * int(rng.integers(1, 4))
    inputs = [_normal(rng, shape), _normal(rng, (out_channels, c // groups) + kernel)]
    bias = rng.random() < 0.7
    inputs.append(_normal(rng, (out_channels,)) if bias else None)
    return inputs, {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _draw_batch_norm(training):
    def draw(rng, shape):
        c = shape[1]
        inputs = [_normal(rng, shape, 2.0) + 1, _normal(rng, (c,)), _normal(rng, (c,))]
        running = (_normal(rng, (c,)), rng.uniform(0.5, 2.0, c))  # training updates them: torch checks how
        return inputs, {"running_mean": running[0], "running_var": running[1], "training": training}
    return draw


def _draw_pool(sample):
    def draw(rng, shape):
        kernel, stride, padding, _ = _window(rng, shape)
        return [sample(rng, shape)], {"kernel_size": kernel, "stride": stride, "padding": padding}
    return draw


def _draw_adaptive_pool(rng, shape):
    return [_normal(rng, shape)], {"output_size": (int(rng.integers(1, shape[2] + 1)),
                                                   int(rng.integers(1, shape[3] + 1)))}


def _draw_residual_add(rng, shape):
    return [_normal(rng, shape), _normal(rng, shape)], {"relu": bool(rng.random() < 0.6)}


def _draw_shortcut_a(rng, shape):
    return [_normal(rng, shape)], {"out_channels": shape[1] + int(rng.integers(0, 5)),
                                   "stride": int(rng.integers(1, 3))}


def _window_labels(inputs, params):
    kernel, stride, padding = (np.broadcast_to(params[k], 2) for k in ("kernel_size", "stride", "padding"))
    return {"stride>1" if stride.max() > 1 else "stride=1", "padding" if padding.any() else "no padding",
            "overlapping" if (stride < kernel).any() else "disjoint"}


def _conv_labels(inputs, params):
    labels = _window_labels(inputs, {"kernel_size": inputs[1].shape[2:], **params})
    return labels | {"dilation>1" if max(params["dilation"]) > 1 else "dilation=1",
                     "groups>1" if params["groups"] > 1 else "groups=1", "bias" if inputs[2] is not None else "no bias"}


def _reduction_labels(inputs, params):
    axis = params["axis"]
    kind = "all axes" if axis is None else ("one axis" if isinstance(axis, int) else "some axes")
    return {kind, "keepdims" if params["keepdims"] else "no keepdims"}


# --- the PyTorch twins' helpers: torch is imported only when a twin runs ---------------------------------

def _torch():
    import torch
    return torch


def _tf():
    import torch.nn.functional
    return torch.nn.functional


def _dims(axis, x):
    return tuple(range(x.ndim)) if axis is None else axis


def _batch_norm(x, w, b, running_mean, running_var, training):
    """minires' batch_norm with the learnable inputs first, as the catalog feeds inputs (torch's order after)."""
    return F.batch_norm(x, running_mean, running_var, w, b, training)


def _torch_batch_norm(x, w, b, running_mean, running_var, training):
    """The twin updates the NumPy running statistics in place, as torch does its own (from_numpy shares memory)."""
    def shared(array):
        return None if array is None else _torch().from_numpy(array)
    return _tf().batch_norm(x, shared(running_mean), shared(running_var), w, b, training=training)


def _torch_shortcut_a(x, out_channels, stride):
    extra = out_channels - x.shape[1]
    return _tf().pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, extra // 2, extra - extra // 2))


_IMAGES = dict(ndim=(4, 4), max_sizes=(3, 4, 9, 9), kernels=True)
_REDUCTION = dict(labels=_reduction_labels, covers=("all axes", "one axis", "some axes", "keepdims", "no keepdims"))
_WINDOW = dict(labels=_window_labels, covers=("stride=1", "stride>1", "padding", "no padding", "overlapping"))

CASES = {case.name: case for case in [
    OpCase("add", F.add, _binary(_normal), (3, 4),
           twin=lambda a, b: a + b),
    OpCase("sub", F.sub, _binary(_normal), (3, 4),
           twin=lambda a, b: a - b),
    OpCase("mul", F.mul, _binary(_normal), (3, 4),
           twin=lambda a, b: a * b),
    OpCase("div", F.div, _binary(_nonzero), (3, 4),
           twin=lambda a, b: a / b),
    OpCase("neg", F.neg, _unary(_normal), (3, 4),
           twin=lambda x: -x),
    OpCase("pow", F.pow, _draw_pow, (3, 4),
           twin=lambda x, exponent: x ** exponent),
    OpCase("exp", F.exp, _unary(lambda rng, s: rng.uniform(-2, 2, s)), (3, 4),
           twin=lambda x: x.exp()),
    OpCase("log", F.log, _unary(_positive), (3, 4),
           twin=lambda x: x.log()),
    OpCase("sqrt", F.sqrt, _unary(_positive), (3, 4),
           twin=lambda x: x.sqrt()),
    OpCase("relu", F.relu, _unary(_normal), (3, 4),
           twin=lambda x: x.relu()),
    OpCase("sigmoid", F.sigmoid, _unary(lambda rng, s: _normal(rng, s, 3.0)), (3, 4),
           twin=lambda x: x.sigmoid()),
    OpCase("tanh", F.tanh, _unary(lambda rng, s: _normal(rng, s, 2.0)), (3, 4),
           twin=lambda x: x.tanh()),
    OpCase("sum", F.sum, _draw_reduction(_normal), (2, 3, 4), **_REDUCTION,
           twin=lambda x, axis, keepdims: x.sum(dim=_dims(axis, x), keepdim=keepdims)),
    OpCase("mean", F.mean, _draw_reduction(_normal), (2, 3, 4), **_REDUCTION,
           twin=lambda x, axis, keepdims: x.mean(dim=_dims(axis, x), keepdim=keepdims)),
    OpCase("max", F.max, _draw_reduction(_distinct), (2, 3, 4), **_REDUCTION,
           twin=lambda x, axis, keepdims: x.amax(dim=_dims(axis, x), keepdim=keepdims)),
    OpCase("reshape", F.reshape, _draw_reshape, (2, 3, 4),
           twin=lambda x, shape: x.reshape(shape)),
    OpCase("transpose", F.transpose, _draw_transpose, (2, 3, 4),
           twin=lambda x, axes: x.permute(axes)),
    OpCase("flatten", F.flatten, _draw_flatten, (2, 3, 4),
           twin=lambda x, start_dim, end_dim: x.flatten(start_dim, end_dim)),
    OpCase("getitem", F.getitem, _draw_getitem, (3, 4, 5),
           twin=lambda x, index: x[index]),
    OpCase("getitem_array", F.getitem, _draw_getitem_array, (4, 3),
           twin=lambda x, index: x[_torch().from_numpy(np.asarray(index))]),
    OpCase("cat", lambda *ts, axis: F.cat(ts, axis=axis), _draw_cat, (2, 3, 4),
           twin=lambda *ts, axis: _torch().cat(ts, dim=axis)),
    OpCase("pad", F.pad, _draw_pad, (2, 3, 4),
           twin=lambda x, pad, value: _tf().pad(x, pad, value=value)),
    OpCase("matmul", F.matmul, _draw_matmul, (3, 4),
           twin=lambda a, b: a @ b),
    OpCase("linear", F.linear, _draw_linear, (5, 4), ndim=(1, 3),
           twin=lambda x, w, b: _tf().linear(x, w, b)),
    OpCase("log_softmax", F.log_softmax, _draw_softmax, (3, 5),
           twin=lambda x, axis: x.log_softmax(dim=axis)),
    OpCase("softmax", F.softmax, _draw_softmax, (3, 5),
           twin=lambda x, axis: x.softmax(dim=axis)),
    OpCase("cross_entropy", F.cross_entropy, _draw_cross_entropy, (6, 5), ndim=(2, 2),
           labels=lambda inputs, params: {"reduction=" + params["reduction"]},
           covers=("reduction=mean", "reduction=sum", "reduction=none"),
           twin=lambda x, target, reduction: _tf().cross_entropy(x, _torch().from_numpy(target), reduction=reduction)),
    OpCase("conv2d", F.conv2d, _draw_conv2d, (2, 4, 7, 7), **_IMAGES, labels=_conv_labels,
           covers=("stride=1", "stride>1", "padding", "no padding", "dilation>1", "groups>1", "groups=1", "bias",
                   "no bias"),
           twin=lambda *args, **kw: _tf().conv2d(*args, **kw)),
    OpCase("batch_norm", _batch_norm, _draw_batch_norm(training=True), (3, 4, 5, 5), ndim=(2, 4),
           max_sizes=(4, 4, 5, 5), min_sizes=(2, 1, 1, 1), kernels=True,
           twin=_torch_batch_norm),  # training: two values per channel
    OpCase("batch_norm_eval", _batch_norm, _draw_batch_norm(training=False), (3, 4, 5, 5), ndim=(2, 4),
           kernels=True,
           twin=_torch_batch_norm),
    OpCase("max_pool2d", F.max_pool2d, _draw_pool(_distinct), (2, 3, 7, 7), **_IMAGES, **_WINDOW,
           twin=lambda *args, **kw: _tf().max_pool2d(*args, **kw)),
    OpCase("avg_pool2d", F.avg_pool2d, _draw_pool(_normal), (2, 3, 7, 7), **_IMAGES, **_WINDOW,
           twin=lambda *args, **kw: _tf().avg_pool2d(*args, **kw)),
    OpCase("adaptive_avg_pool2d", F.adaptive_avg_pool2d, _draw_adaptive_pool, (2, 3, 7, 7), **_IMAGES,
           labels=lambda inputs, params: {"overlapping cells" if any(inputs[0].shape[2 + i] % params["output_size"][i]
                                                                     for i in range(2)) else "exact cells"},
           covers=("overlapping cells",),
           twin=lambda *args, **kw: _tf().adaptive_avg_pool2d(*args, **kw)),
    OpCase("residual_add", F.residual_add, _draw_residual_add, (2, 3, 5, 5), ndim=(1, 4), kernels=True,
           labels=lambda inputs, params: {"relu" if params["relu"] else "no relu"}, covers=("relu", "no relu"),
           twin=lambda out, shortcut, relu: (out + shortcut).relu() if relu else out + shortcut),
    OpCase("shortcut_a", F.shortcut_a, _draw_shortcut_a, (2, 3, 6, 6), **_IMAGES,
           labels=lambda inputs, params: {f"stride={params['stride']}",
                                          "zero channels" if params["out_channels"] > inputs[0].shape[1] else
                                          "same channels"},
           covers=("stride=1", "stride=2", "zero channels"),
           twin=_torch_shortcut_a),
]}


def names():
    return sorted(CASES)


def get(name):
    try:
        return CASES[name]
    except KeyError:
        raise UnknownNameError(f"unknown op {name!r}; known ops: {', '.join(names())}") from None


def gradcheck_case(case, shape=None, seed=0, mode="full", raise_exception=False, **options):
    """Run minires.gradcheck on a catalog case; inputs on a kink are re-drawn along with their parameters."""
    from .gradcheck import gradcheck

    shape = tuple(shape or case.shape)
    if not case.accepts(shape):
        raise ArgumentError(f"{case.name}: shape {shape} is not accepted (rank {case.ndim[0]} to {case.ndim[1]}, "
                         f"sizes at least {case.min_sizes[:len(shape)]})")
    drawn = {}

    def draw(rng):
        arrays, drawn["params"] = case.draw(rng, shape)
        return arrays

    def fn(*tensors):
        return case.fn(*tensors, **drawn["params"])

    return gradcheck(fn, draw, mode=mode, seed=seed, raise_exception=raise_exception, name=case.name, **options)


def covering_seeds(case, shape=None, draws=3, first=0, search=200):
    """Seeds for ``draws`` or more draws of ``case`` that together exercise every label in ``case.covers``:
    the first seeds, then each later seed that adds a label still missing (deterministic on every machine:
    NumPy's Generator streams are platform-independent)."""
    seeds, seen = [], set()
    for seed in range(first, first + search):
        labels = case.labels(*draw_case(case, shape, seed)) if case.labels else set()
        if len(seeds) < draws or not labels <= seen and set(case.covers) - seen & labels:
            seeds.append(seed)
            seen |= labels
        if len(seeds) >= draws and set(case.covers) <= seen:
            return seeds
    raise ArgumentError(f"{case.name}: no {search} draws cover {sorted(set(case.covers) - seen)}")


TORCH_TOLERANCE = 1e-9  # relative to the largest magnitude; float64, so two correct engines agree to ~1e-14


@dataclass
class TorchComparison:
    name: str
    forward_error: float  # max |minires - torch| / max |torch| over the output
    gradient_error: float  # the same, worst over the inputs' gradients
    state_error: float  # the same, worst over arrays the op updates in place (running statistics)

    @property
    def worst(self):
        return max(self.forward_error, self.gradient_error, self.state_error)

    @property
    def passed(self):
        return bool(np.isfinite(self.worst)) and self.worst <= TORCH_TOLERANCE


def draw_case(case, shape=None, seed=0):
    """The inputs and parameters of one draw (the first draw ``gradcheck_case`` makes with this seed)."""
    return case.draw(np.random.default_rng(seed), tuple(shape or case.shape))


def compare_with_torch(case, shape=None, seed=0):
    """Run the op and its PyTorch twin (``case.twin``) on the same float64 draw: forward, backward under
    a random upstream gradient, and any array parameter updated in place. Needs torch."""
    import torch

    from .parity import relative_error

    inputs, params = draw_case(case, shape, seed)
    ours_params, theirs_params = copy.deepcopy(params), copy.deepcopy(params)
    ours = [None if a is None else Tensor(a, requires_grad=True) for a in inputs]
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in inputs]
    y, y_torch = case.fn(*ours, **ours_params), case.twin(*theirs, **theirs_params)
    upstream = np.random.default_rng([seed, 1]).standard_normal(y.shape)
    y.backward(upstream)
    y_torch.backward(torch.from_numpy(upstream))
    gradient_error = max([relative_error(a.grad.numpy(), b.grad.numpy()) for a, b in zip(ours, theirs) if a is not None])
    state = [relative_error(ours_params[k], theirs_params[k]) for k, v in params.items() if isinstance(v, np.ndarray)]
    return TorchComparison(case.name, relative_error(y.numpy(), y_torch.detach().numpy()), gradient_error,
                           max(state, default=0.0))
