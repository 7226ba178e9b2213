"""Tensor constructors with PyTorch's names and keywords: zeros, ones, full, empty, arange, linspace, randn,
rand, randint, randperm, zeros_like, ones_like, as_tensor, from_numpy. Each takes ``dtype`` (float32 by default for floating results, as
torch), ``device`` and ``requires_grad``; the random ones take ``generator=`` (a numpy Generator or an int
seed) and otherwise draw from the default generator that ``mr.manual_seed`` seeds. Random numbers are drawn
on the host, so one seed gives the same values on every device."""
import numbers

import numpy as np

from . import backend
from .errors import ArgumentError
from .rng import as_generator
from .tensor import Tensor

DEFAULT_FLOAT = np.float32


def _shape(size):
    """torch accepts zeros(2, 3) and zeros((2, 3)); ``size`` is the tuple of those arguments."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 0 for n in size):
        raise ArgumentError(f"expected a shape of non-negative ints, got {size!r}")
    return tuple(int(n) for n in size)


def _strided(layout):
    """torch's layout=: minires tensors are dense (strided) only."""
    if layout is not None and str(layout) not in ("torch.strided", "strided"):
        raise ArgumentError(f"minires does not implement layout={layout} yet (dense tensors only)")


def _made(array, dtype, device, requires_grad):
    array = array.astype(dtype if dtype is not None else array.dtype, copy=False)
    t = Tensor._make(backend.to_device(array, device) if device not in (None, "cpu") else array)
    t.requires_grad = requires_grad
    return t


def zeros(*size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    _strided(layout)
    return _made(np.zeros(_shape(size), dtype or DEFAULT_FLOAT), None, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    _strided(layout)
    return _made(np.ones(_shape(size), dtype or DEFAULT_FLOAT), None, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    _strided(layout)
    return _made(np.empty(_shape(size), dtype or DEFAULT_FLOAT), None, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of ``size`` filled with ``fill_value``: float32 for a float, int64 for an int (as torch)."""
    if dtype is None:
        dtype = np.int64 if isinstance(fill_value, numbers.Integral) and not isinstance(fill_value, bool) else \
            (np.bool_ if isinstance(fill_value, bool) else DEFAULT_FLOAT)
    return _made(np.full(_shape((size,)), fill_value, dtype), None, device, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, layout=None):
    """[start, end) by step: int64 when every argument is an int, float32 otherwise (as torch)."""
    _strided(layout)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ArgumentError("arange: step must not be zero")
    ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
    values = np.arange(start, end, step, dtype=np.int64 if ints else np.float64)
    return _made(values, dtype or (np.int64 if ints else DEFAULT_FLOAT), device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    if not isinstance(steps, numbers.Integral) or steps < 0:
        raise ArgumentError(f"linspace: steps must be a non-negative int, got {steps!r}")
    return _made(np.linspace(start, end, steps), dtype or DEFAULT_FLOAT, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """Standard normal samples."""
    _strided(layout)
    return _made(as_generator(generator).standard_normal(_shape(size)), dtype or DEFAULT_FLOAT, device,
                 requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, layout=None, pin_memory=False):
    """Uniform samples in [0, 1)."""
    _strided(layout)
    return _made(as_generator(generator).random(_shape(size)), dtype or DEFAULT_FLOAT, device, requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None):
    """Integers in [low, high) (or [0, low) when high is left out), int64 by default, as torch.randint."""
    if high is None:
        low, high = 0, low
    if size is None:
        raise ArgumentError("randint: size is required, e.g. randint(0, 10, (3,))")
    if high <= low:
        raise ArgumentError(f"randint: high ({high}) must be greater than low ({low})")
    values = as_generator(generator).integers(low, high, _shape((size,)))
    return _made(values, dtype or np.int64, device, False)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def randperm(n, generator=None, dtype=None, device=None):
    """A random permutation of 0..n-1 (int64), as torch.randperm."""
    return _made(as_generator(generator).permutation(int(n)), dtype or np.int64, device, False)


def from_numpy(ndarray):
    """A Tensor sharing ``ndarray``'s memory (changes show on both sides), as torch.from_numpy."""
    if not isinstance(ndarray, np.ndarray):
        raise ArgumentError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    return Tensor._make(ndarray)


def as_tensor(data, dtype=None, device=None):
    """``data`` as a Tensor, without a copy when it already is one (or an array) of that dtype and device."""
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype) and \
            (device is None or backend.normalize_device(device) == backend.normalize_device(data.device)):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype) and device in (None, "cpu"):
        return Tensor._make(data)
    return Tensor(data, dtype=dtype, device=device)


def is_tensor(value):
    return isinstance(value, Tensor)


def numel(t):
    return t.numel()
