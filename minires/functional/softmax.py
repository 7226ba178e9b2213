"""softmax and log_softmax along one axis, computed stably by subtracting the maximum first."""
from .. import backend
from ..function import Function
from .axes import axis_argument, normalize_axis


def stable_log_softmax(x, axis):
    """log softmax(x) = (x - m) - log sum exp(x - m) with m = max(x): exp never overflows."""
    xp = backend.get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    name = "log_softmax"

    def forward(self, x, axis):
        self.axis = axis
        y = stable_log_softmax(x, axis)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        xp = backend.get_array_module(g)
        # dy_i/dx_j = delta_ij - softmax_j, so dx = g - softmax * sum(g)
        return g - xp.exp(y) * g.sum(axis=self.axis, keepdims=True)


class Softmax(Function):
    name = "softmax"

    def forward(self, x, axis):
        self.axis = axis
        y = backend.get_array_module(x).exp(stable_log_softmax(x, axis))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        # dy_i/dx_j = y_i (delta_ij - y_j), so dx = y * (g - sum(g * y))
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """log softmax along ``dim`` (or NumPy's ``axis=``; the last axis when neither is given), in ``dtype``
    when one is given (the input is cast first, as torch)."""
    x = input if dtype is None else input.to(dtype)
    axis = axis_argument("log_softmax", axis, dim, default=-1)
    return LogSoftmax.apply(x, axis=normalize_axis("log_softmax", axis, x.ndim))


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """softmax along ``dim`` (or ``axis=``; the last axis when neither is given)."""
    x = input if dtype is None else input.to(dtype)
    axis = axis_argument("softmax", axis, dim, default=-1)
    return Softmax.apply(x, axis=normalize_axis("softmax", axis, x.ndim))
