"""minires.kernels — the one socket between the autograd graph and the hand-written kernels.

A Function in minires/functional calls exactly one function of this file forward and one backward, by a
name grep finds (``kernels.conv2d_forward``). Every choice of implementation is made here and nowhere else:

    choice        between                                  where
    flavour       NumPy reference, numba loops, CUDA C     choose: CuPy arrays (or ``using("cuda")``) get CUDA,
                                                           NumPy arrays the CPU flavour in force (numba if it
                                                           imports, MINIRES_KERNELS or ``using`` say otherwise)
    memory        NCHW or channels-last (NHWC underneath)  each op's rule below; every op keeps its input's layout;
                                                           conv2d_weight_format: how nn.Conv2d stores its weight
    convolution   direct SIMD, im2col + GEMM per image,    conv2d_forward
                  one GEMM for the batch (CUDA)
    fusion        batch-norm + residual + ReLU as one      fuses_batch_norm_relu
                  kernel pair, or the three ops

MINIRES_KERNELS=reference (or ``with kernels.using("reference"):``) runs the NumPy references only: then every
rule below ends in a ``*_reference`` function of the family file it names, and a learner can read an op from
its Function through this file to its reference. Kernel families (one file each: NumPy reference and numba
twin side by side with one signature; CUDA C in kernels/cuda/) are collected by name (registry.py), so
``table.im2col.numba`` is im2col.py's ``im2col_numba``. Nothing here imports the Tensor or Function classes.
"""
import contextlib
import os
from functools import partial
from typing import Any, NamedTuple, Optional, Sequence, Tuple

from minires.backend import get_array_module
from minires.errors import ArgumentError
from minires.memory_format import Layout, from_pixel_matrix, only_channels_last, pixel_matrix

from . import (batchnorm, batchnorm_channels_last, batchnorm_relu, batchnorm_relu_channels_last, direct, finite,
               im2col, pool, residual, sgd)
from .cuda import batchnorm as cuda_batchnorm, finite as cuda_finite
from .cuda import im2col as cuda_im2col, pool as cuda_pool, residual as cuda_residual, sgd as cuda_sgd
from .registry import collect, registered, table  # noqa: F401

# Registration by convention: each family with its CUDA twin (the NHWC families have none: CuPy runs NCHW).
for _family, _twin in ((im2col, cuda_im2col), (batchnorm, cuda_batchnorm),
                       (batchnorm_channels_last, None), (batchnorm_relu, cuda_batchnorm),
                       (batchnorm_relu_channels_last, None), (pool, cuda_pool), (residual, cuda_residual),
                       (sgd, cuda_sgd), (finite, cuda_finite)):
    collect(_family, _twin)

# --- the flavour in force: the rule every kernel shares ---------------------------------------------------

FLAVOURS = ("reference", "numba")
_forced = []  # flavours forced by ``using`` (innermost last); they win over MINIRES_KERNELS


def implementation(op, flavour):
    """Kernel ``op`` in one flavour ("reference", "numba" or "cuda"), or None where that slot is empty;
    for tests and benchmarks that compare flavours side by side."""
    return getattr(getattr(table, op), flavour)


def pick(op, xp):
    """The implementation of kernel ``op`` that ``choose`` runs for arrays of module ``xp`` (numpy or cupy):
    tests and benchmarks call one kernel by name this way; the library calls the functions below."""
    return choose(getattr(table, op), xp)


def choose(versions, xp):
    """The one rule every kernel shares: CuPy arrays (or ``using("cuda")``) get the CUDA version, NumPy arrays
    the CPU flavour in force; an empty slot falls back to the NumPy reference, which is written against its
    input's array module, so it runs (slowly) on CuPy arrays too."""
    if cuda_in_force(xp):
        return versions.cuda or versions.reference
    return versions.numba if cpu_flavour() == "numba" and versions.numba else versions.reference


@contextlib.contextmanager
def using(flavour):
    """Run the kernels of one CPU flavour inside a ``with`` block (gradcheck --flavour, tests, benchmarks).
    ``"cuda"`` runs the CUDA kernels on whatever arrays they get (the reference where a slot is empty): the
    tests use it with NumPy arrays and the CPU harness standing in for the GPU (kernels/cuda/modules.py)."""
    if flavour not in FLAVOURS + ("cuda",):
        raise ArgumentError(f"kernel flavour must be one of {FLAVOURS + ('cuda',)}, got {flavour!r}")
    if flavour == "numba" and not numba_available():
        raise ArgumentError("the numba kernel flavour was asked for but numba cannot be imported")
    _forced.append(flavour)
    try:
        yield
    finally:
        _forced.pop()


def cpu_flavour():
    """The CPU flavour in force: the innermost ``using`` block, else MINIRES_KERNELS if set, else numba when
    it imports, else the reference."""
    if _forced:
        return _forced[-1]
    forced = os.environ.get("MINIRES_KERNELS", "").strip().lower()
    if forced:
        if forced not in FLAVOURS:
            raise ArgumentError(f"MINIRES_KERNELS must be one of {FLAVOURS}, got {forced!r}")
        if forced == "numba" and not numba_available():
            raise ArgumentError("MINIRES_KERNELS=numba but numba cannot be imported")
        return forced
    return "numba" if numba_available() else "reference"


def cuda_in_force(xp):
    """Whether arrays of module ``xp`` run the CUDA kernels: CuPy arrays, or any inside ``using("cuda")``."""
    return xp.__name__ == "cupy" or cpu_flavour() == "cuda"


def numba_available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


Array = Any  # a numpy.ndarray or cupy.ndarray; 4-D arrays are NCHW-shaped, their memory NCHW or NHWC


class Saved(NamedTuple):
    """What a forward hands its backward: the backward that belongs to the implementation forward ran (the
    flavour in force may change in between), that implementation's own state, and the input's layout."""
    backward: Any
    state: Any
    layout: Layout


# --- conv2d ------------------------------------------------------------------------------------------------

def conv2d_input_format(x: Array, weight: Array, window, groups: int) -> Optional[str]:
    """"channels_last" where conv2d_forward will run the direct kernels and x is NCHW: the weight is
    channels-last and pulls x over (as in torch). functional/conv.py converts x first, as an op of its own
    that the profiler counts."""
    if _runs_direct(x, weight, window, groups) and not only_channels_last(x):
        return "channels_last"
    return None


def _runs_direct(x, weight, window, groups):
    return cpu_flavour() == "numba" and direct.applies(x, weight, window, groups)


def conv2d_weight_format(dtype, device: str = "cpu") -> str:
    """The memory format nn.Conv2d gives a new weight: "channels_last" where the direct kernels run float32
    convolutions (the numba flavour, a CPU with a vector profile: kernels/direct/isa.py), so that a network
    written as in PyTorch — NCHW tensors, no memory format named — runs them: the first convolution pulls its
    input over and every later op keeps channels-last (issue 28 measured a ResNet-20 training step on a 2-core
    AVX2 Zen 3 at 4.0x torch's time with NCHW weights, 1.35x with channels-last ones). Shapes stay NCHW.
    Elsewhere, and on a CUDA ``device`` (whose GEMM convolution runs NCHW), "contiguous_format"."""
    import numpy as np
    if device == "cpu" and np.dtype(dtype) == np.float32 and cpu_flavour() == "numba" and direct.isa.current().lanes:
        return "channels_last"
    return "contiguous_format"


def conv2d_forward(x: Array, weight: Array, bias: Optional[Array], window, groups: int) -> Tuple[Array, Saved]:
    """y = conv(x, W) + b (functional/conv.py states the notation). Rules, first match wins:
    1. direct SIMD kernels (kernels/direct/) for float32 NumPy arrays under the numba flavour, groups 1, no
       dilation, channels-last input or weight: a ResNet-20 training step took 0.15 s this way against 0.50 s
       on the NCHW im2col path (2-core AVX-512 VM, benchmarks/RESULTS.md, issue 16); y is channels-last;
    2. otherwise NCHW: im2col.py's im2col + GEMM per image (reference, or numba's im2col on a lent workspace),
       or on CUDA one GEMM for the whole batch (kernels/cuda/im2col.py). A channels-last input or weight runs
       NCHW and gets a channels-last y (as in torch, either makes the output channels-last)."""
    layout = Layout.of(x)
    if _runs_direct(x, weight, window, groups):
        y, state = direct.conv2d_forward(x, weight, bias, window)
        return y, Saved(direct.conv2d_backward, state, layout)
    out_layout = Layout(layout.channels_last or only_channels_last(weight))
    xp = get_array_module(x)
    y, state = choose(table.conv2d_forward, xp)(layout.nchw(x), weight, bias, window, groups)
    backward = partial(_conv2d_backward_nchw, choose(table.conv2d_backward, xp), layout, Layout.of(weight),
                       out_layout)
    return out_layout.restore(y), Saved(backward, state, layout)


def conv2d_backward(saved: Saved, g: Array, needs: Sequence[bool]):
    """dx, dW, db (None where ``needs`` says no); dx laid out as x, dW as W (as in torch)."""
    return saved.backward(saved.state, g, needs)


def _conv2d_backward_nchw(kernel, layout, weight_layout, out_layout, state, g, needs):
    grad_x, grad_w, grad_b = kernel(state, out_layout.nchw(g), needs)
    return (None if grad_x is None else layout.restore(grad_x),
            None if grad_w is None else weight_layout.restore(grad_w), grad_b)


# --- batch-norm ------------------------------------------------------------------------------------------

def batch_norm_forward(x: Array, gamma: Array, beta: Array, eps: float, training: bool,
                       running: Tuple[Optional[Array], Optional[Array], float]) -> Tuple[Array, Saved]:
    """y = BN(x) per channel of x (N, C, ...) (functional/batchnorm.py states the maths). Training normalises
    with the batch statistics and moves ``running`` = (running_mean, running_var, momentum) in place;
    evaluation uses copies of the running statistics. NCHW memory runs batchnorm.py on the (N, C, H W) view;
    channels-last memory runs batchnorm_channels_last.py on its (N H W, C) pixel matrix (a view, no copy)."""
    xp, channels_last = get_array_module(x), only_channels_last(x)
    x2 = pixel_matrix(x) if channels_last else x.reshape(*x.shape[:2], -1)
    family = table.batchnorm_channels_last_forward_train if channels_last else table.batchnorm_forward_train
    if training:
        y, mean, _, inv_std = choose(family, xp)(x2, gamma, beta, eps, running=running)
    else:
        mean, var, inv_std = _evaluation_statistics(running, eps)
        family = table.batchnorm_channels_last_forward_eval if channels_last else table.batchnorm_forward_eval
        y = choose(family, xp)(x2, gamma, beta, mean, var, eps)
    backward = _batch_norm_backward_kernel(channels_last, training, xp)
    return _unview(y, x.shape, channels_last), Saved(backward, (x2, gamma, mean, inv_std), Layout(channels_last))


def _batch_norm_backward_kernel(channels_last, training, xp):
    if channels_last:
        versions = table.batchnorm_channels_last_backward if training else table.batchnorm_channels_last_backward_eval
    else:
        versions = table.batchnorm_backward if training else table.batchnorm_backward_eval
    return choose(versions, xp)


def batch_norm_backward(saved: Saved, g: Array):
    """dx, dgamma, dbeta: training differentiates through the batch statistics (the three-term form),
    evaluation through an affine map."""
    x2, gamma, mean, inv_std = saved.state
    channels_last = saved.layout.channels_last
    g2 = pixel_matrix(g) if channels_last else g.reshape(x2.shape)
    dx, dgamma, dbeta = saved.backward(g2, x2, gamma, mean, inv_std)
    return _unview(dx, g.shape, channels_last), dgamma, dbeta


def batch_norm_update_running(running: Tuple[Optional[Array], Optional[Array], float], mean: Array, var: Array,
                              count) -> None:
    """running = (1 - momentum) running + momentum batch, in place, the variance made unbiased (count values
    per channel), as every training forward above does: for sync_batch_norm, whose statistics are global."""
    batchnorm.update_running(running, mean, var, count)


def fuses_batch_norm_relu(x: Array) -> bool:
    """Whether relu(batch_norm(x) + residual) runs as one fused kernel pair (batch_norm_relu_forward): on
    channels-last memory (two passes each way instead of six) and under CUDA (each pass is a launch). NCHW on
    the CPU runs the three ops, whose numba kernels are each one pass already."""
    return only_channels_last(x) or cuda_in_force(get_array_module(x))


def batch_norm_relu_forward(x: Array, gamma: Array, beta: Array, eps: float, training: bool,
                            running: Tuple[Optional[Array], Optional[Array], float],
                            residual: Optional[Array]) -> Tuple[Array, Saved]:
    """y = max(BN(x) + residual, 0) in one kernel pair (batchnorm_relu*.py); residual may be None."""
    xp, channels_last = get_array_module(x), only_channels_last(x)
    view = pixel_matrix if channels_last else (lambda a: a.reshape(*x.shape[:2], -1))
    x2, r2 = view(x), None if residual is None else view(residual)
    if training:
        family = table.batchnorm_relu_channels_last_forward_train if channels_last else \
            table.batchnorm_relu_forward_train
        y, mean, _, inv_std = choose(family, xp)(x2, gamma, beta, eps, r2, running=running)
        backward = table.batchnorm_relu_channels_last_backward if channels_last else table.batchnorm_relu_backward
    else:
        mean, var, inv_std = _evaluation_statistics(running, eps)
        family = table.batchnorm_relu_channels_last_forward_eval if channels_last else \
            table.batchnorm_relu_forward_eval
        y = choose(family, xp)(x2, gamma, beta, mean, var, eps, r2)
        backward = table.batchnorm_relu_channels_last_backward_eval if channels_last else \
            table.batchnorm_relu_backward_eval
    return _unview(y, x.shape, channels_last), Saved(choose(backward, xp), (x2, y, gamma, mean, inv_std),
                                                     Layout(channels_last))


def batch_norm_relu_backward(saved: Saved, g: Array, with_residual: bool):
    """dx, dgamma, dbeta and (with_residual) the gradient the join hands the shortcut."""
    x2, y, gamma, mean, inv_std = saved.state
    channels_last = saved.layout.channels_last
    g2 = pixel_matrix(g) if channels_last else g.reshape(x2.shape)
    dx, dgamma, dbeta, gm = saved.backward(g2, y, x2, gamma, mean, inv_std, with_residual)
    return (_unview(dx, g.shape, channels_last), dgamma, dbeta,
            _unview(gm, g.shape, channels_last) if with_residual else None)


def _unview(a2, shape, channels_last):
    return from_pixel_matrix(a2, shape) if channels_last else a2.reshape(shape)


def _evaluation_statistics(running, eps):
    """mean, var and 1 / sqrt(var + eps) from the running statistics, copied: later training steps must not
    change what this op's backward uses."""
    mean, var = running[0].copy(), running[1].copy()
    return mean, var, 1 / get_array_module(var).sqrt(var + eps)


# --- pooling -----------------------------------------------------------------------------------------------

def max_pool2d_forward(x: Array, window) -> Tuple[Array, Saved]:
    """Max over each window; both memory formats have kernels (pool.py), so no copies."""
    xp, layout = get_array_module(x), Layout.of(x)
    forward, backward = (table.max_pool_channels_last_forward, table.max_pool_channels_last_backward) \
        if layout.channels_last else (table.max_pool_forward, table.max_pool_backward)
    y, argmax = choose(forward, xp)(layout.memory(x), *_pool_args(window))
    return layout.tensor(y), Saved(choose(backward, xp), (argmax, x.shape[2:], window), layout)


def max_pool2d_backward(saved: Saved, g: Array) -> Array:
    """Each window's gradient goes to the input pixel that won it."""
    argmax, (h, w), window = saved.state
    return saved.layout.tensor(saved.backward(saved.layout.memory(g), argmax, h, w, *_pool_args(window)))


def avg_pool2d_forward(x: Array, window) -> Tuple[Array, Saved]:
    """Mean over each window, padded zeros counted. NCHW kernels: a channels-last x is copied each way."""
    layout, xp = Layout.of(x), get_array_module(x)
    y = choose(table.avg_pool_forward, xp)(layout.nchw(x), *_pool_args(window))
    return layout.restore(y), Saved(choose(table.avg_pool_backward, xp), (x.shape[2:], window), layout)


def avg_pool2d_backward(saved: Saved, g: Array) -> Array:
    """Each window's gradient spread evenly over its KH KW pixels."""
    (h, w), window = saved.state
    return saved.layout.restore(saved.backward(saved.layout.nchw(g), h, w, *_pool_args(window)))


def adaptive_avg_pool2d_forward(x: Array, output_size) -> Tuple[Array, Saved]:
    """Average into an output_size grid; a 1x1 grid (global pooling, every ResNet's head) has fast kernels, any
    other size runs the reference (a handful of NumPy slices). NCHW kernels, as avg_pool2d."""
    layout, xp = Layout.of(x), get_array_module(x)
    if output_size == (1, 1):
        y = choose(table.global_avg_pool_forward, xp)(layout.nchw(x))
        backward = choose(table.global_avg_pool_backward, xp)
    else:
        y = table.adaptive_avg_pool_forward.reference(layout.nchw(x), *output_size)
        backward = table.adaptive_avg_pool_backward.reference
    return layout.restore(y), Saved(backward, x.shape[2:], layout)


def adaptive_avg_pool2d_backward(saved: Saved, g: Array) -> Array:
    return saved.layout.restore(saved.backward(saved.layout.nchw(g), *saved.state))


def _pool_args(window):
    """The pooling kernels' window arguments: KH, KW, SH, SW, PH, PW."""
    return (*window.kernel, *window.stride, *window.padding)


# --- the residual join, option-A shortcut, ReLU ---------------------------------------------------------

def residual_add_forward(out: Array, shortcut: Array, relu: bool) -> Array:
    """y = out + shortcut (then ReLU): elementwise, on the memory as it is (y laid out as ``out``)."""
    layout = Layout.of(out)
    kernel = choose(table.residual_add_forward, get_array_module(out))
    return layout.tensor(kernel(layout.memory(out), layout.memory(shortcut), relu))


def residual_add_backward(g: Array, y: Array) -> Array:
    """The join's gradient with its ReLU: g where y > 0 (both branches receive it)."""
    layout = Layout.of(y)
    kernel = choose(table.residual_add_backward, get_array_module(g))
    return layout.tensor(kernel(layout.memory(g), layout.memory(y), True))


def relu_backward(g: Array, y: Array) -> Array:
    """g where y > 0, else 0 (the kernel reads memory flat: g is handed over in y's layout)."""
    layout = Layout.of(y)
    return layout.tensor(choose(table.relu_backward, get_array_module(g))(layout.memory(g), layout.memory(y)))


def shortcut_a_forward(x: Array, out_channels: int, stride) -> Tuple[Array, Saved]:
    """x[:, :, ::SH, ::SW] with zero channels around it; NHWC memory has its own kernels (two strided copies)."""
    layout, xp = Layout.of(x), get_array_module(x)
    forward, backward = (table.shortcut_a_forward_channels_last, table.shortcut_a_backward_channels_last) \
        if layout.channels_last else (table.shortcut_a_forward, table.shortcut_a_backward)
    y = choose(forward, xp)(layout.memory(x), out_channels, *stride)
    return layout.tensor(y), Saved(choose(backward, xp), (x.shape, stride), layout)


def shortcut_a_backward(saved: Saved, g: Array) -> Array:
    (_, c, h, w), stride = saved.state
    return saved.layout.tensor(saved.backward(saved.layout.memory(g), c, h, w, *stride))


# --- the optimiser and the training loop's checks ----------------------------------------------------------

def sgd_update(params, grads, buffers, firsts, lr, momentum, dampening, weight_decay, nesterov):
    """PyTorch's SGD rule (sgd.py) on each parameter of one group, in place; buffers[i] None without momentum.
    CUDA: one launch for the group's parameters of each dtype. NumPy: one pass per parameter, in parallel,
    where the parameter, its gradient and its buffer share one dense memory order (the kernels walk them
    flat), else the reference on the arrays as they are."""
    xp = get_array_module(params[0]) if params else None
    batched = {}  # dtype -> rows for one CUDA launch
    for p, g, buffer, first in zip(params, grads, buffers, firsts):
        scalars = sgd.scalars(p.dtype, lr, momentum, dampening, weight_decay, nesterov)
        flat = sgd.flat_views(p, g, buffer)
        if flat is None:
            table.sgd_update.reference(p, g, buffer, *scalars, first)
        elif cuda_in_force(xp):
            batched.setdefault(p.dtype, []).append((*flat, first))
        else:  # (an empty stand-in for a missing buffer: numba types every argument)
            p_flat, g_flat, b_flat = flat
            choose(table.sgd_update, xp)(p_flat, g_flat, p_flat[:0] if b_flat is None else b_flat, *scalars, first)
    for dtype, rows in batched.items():
        flat_params, flat_grads, flat_buffers, flat_firsts = zip(*rows)
        choose(table.sgd_update_many, xp)(list(flat_params), list(flat_grads), list(flat_buffers),
                                          *sgd.scalars(dtype, lr, momentum, dampening, weight_decay, nesterov),
                                          firsts=list(flat_firsts))


def count_non_finite(arrays: Sequence[Array]) -> Array:
    """How many NaN or infinite values each array holds (one launch for all of them on the GPU)."""
    return choose(table.count_non_finite, get_array_module(arrays[0]))(arrays)
