"""Elementwise functions of one tensor. Each backward: local derivative x upstream gradient."""
from .. import backend, kernels
from ..errors import ArgumentError
from ..function import Function


class Exp(Function):
    name = "exp"

    def forward(self, x):
        y = backend.get_array_module(x).exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return y * g  # d exp(x) = exp(x)


class Log(Function):
    name = "log"

    def forward(self, x):
        self.save_for_backward(x)
        return backend.get_array_module(x).log(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g / x  # d log(x) = 1/x


class Sqrt(Function):
    name = "sqrt"

    def forward(self, x):
        y = backend.get_array_module(x).sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return g / (2 * y)  # d sqrt(x) = 1 / (2 sqrt(x))


class ReLU(Function):
    name = "relu"

    def forward(self, x):
        y = backend.get_array_module(x).maximum(x, 0)  # a ufunc: y keeps x's memory format
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        # d relu(x) = 1 where x > 0, else 0. Written as torch's threshold_backward: exactly 0 where y <= 0
        # (even for a NaN gradient), and a NaN output passes its gradient on, so NaN is never hidden.
        return kernels.relu_backward(g, y)


class Sigmoid(Function):
    name = "sigmoid"

    def forward(self, x):
        xp = backend.get_array_module(x)
        # exp(-|x|) never overflows; the two branches are the same function written stably for each sign.
        e = xp.exp(-xp.abs(x))
        y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return y * (1 - y) * g  # d sigmoid = sigmoid (1 - sigmoid)


class Tanh(Function):
    name = "tanh"

    def forward(self, x):
        y = backend.get_array_module(x).tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return (1 - y * y) * g  # d tanh = 1 - tanh^2


class Abs(Function):
    name = "abs"

    def forward(self, x):
        self.save_for_backward(x)
        return backend.get_array_module(x).abs(x)

    def backward(self, g):
        (x,) = self.saved_tensors
        return g * backend.get_array_module(x).sign(x)  # d|x| = sign(x) (0 at 0, as torch)


class Clamp(Function):
    """min(max(x, low), high); the gradient passes where low <= x <= high (torch's convention at the ends)."""
    name = "clamp"

    def forward(self, x, low, high):
        xp = backend.get_array_module(x)
        inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        self.save_for_backward(inside)
        return xp.clip(x, low, high).astype(x.dtype, copy=False)

    def backward(self, g):
        (inside,) = self.saved_tensors
        return g * inside


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def relu(input, inplace=False):
    """max(x, 0); ``inplace=True`` writes it into ``input`` (as torch: history rebased, version counted)."""
    return input.relu_() if inplace else ReLU.apply(input)


def sigmoid(input):
    return Sigmoid.apply(input)


def tanh(input):
    return Tanh.apply(input)


def abs(x):
    return Abs.apply(x)


def clamp(x, min=None, max=None):
    """Clamp into [min, max] (either may be None), as torch.clamp."""
    if min is None and max is None:
        raise ArgumentError("clamp: give at least one of min and max")
    return Clamp.apply(x, low=min, high=max)
