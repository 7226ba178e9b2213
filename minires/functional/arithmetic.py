"""Elementwise arithmetic with NumPy broadcasting: + - * / neg and powers.

Each backward line reads "local derivative x upstream gradient", then ``sum_to_shape`` undoes broadcasting.
"""
import math
import numbers

from ..errors import ArgumentTypeError
from ..function import Function
from ..tensor import Tensor
from .broadcast import broadcast_shape, sum_to_shape
from .operands import as_tensor


class _Binary(Function):
    """Shared forward bookkeeping of the broadcasting binary ops."""

    def forward(self, a, b):
        broadcast_shape(self.op_name(), a.shape, b.shape)
        self.a_shape, self.b_shape = a.shape, b.shape
        return self.compute(a, b)

    def grads(self, grad_a, grad_b):
        """Each gradient summed back to its input's shape (None where not needed)."""
        need_a, need_b = self.needs_input_grad
        return (sum_to_shape(grad_a(), self.a_shape) if need_a else None,
                sum_to_shape(grad_b(), self.b_shape) if need_b else None)


class Add(_Binary):
    name = "add"

    def compute(self, a, b):
        return a + b

    def backward(self, g):
        return self.grads(lambda: g, lambda: g)


class Sub(_Binary):
    name = "sub"

    def compute(self, a, b):
        return a - b

    def backward(self, g):
        return self.grads(lambda: g, lambda: -g)


class Mul(_Binary):
    name = "mul"

    def compute(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved_tensors
        return self.grads(lambda: b * g, lambda: a * g)


class Div(_Binary):
    name = "div"

    def compute(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, g):
        a, b = self.saved_tensors
        # d(a/b)/db = -(a/b)/b, divided twice rather than by b*b, which under- or overflows first (b = 1e-23)
        return self.grads(lambda: g / b, lambda: -g * ((a / b) / b))


class Neg(Function):
    name = "neg"

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Pow(Function):
    """x ** p for a constant number p."""
    name = "pow"

    def forward(self, x, exponent):
        self.save_for_backward(x)
        self.exponent = exponent
        return x ** exponent

    def backward(self, g):
        (x,) = self.saved_tensors
        p = self.exponent
        if p == 0:  # d x**0 / dx = 0 everywhere, also at x = 0 where p * x**(p-1) would be 0 * inf
            return g * 0
        return p * x ** (p - 1) * g


class RPow(Function):
    """base ** x for a constant positive number base: d/dx = base**x * ln(base)."""
    name = "rpow"

    def forward(self, x, base):
        y = base ** x
        self.save_for_backward(y)
        self.log_base = math.log(base)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        return y * self.log_base * g


def _binary(fn, a, b):
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise ArgumentTypeError(f"{fn.name}: expected at least one Tensor, got {type(a).__name__} and "
                            f"{type(b).__name__}")
        a = as_tensor(a, like=b)
    elif not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    return fn.apply(a, b)


def add(a, b):
    return _binary(Add, a, b)


def sub(a, b):
    return _binary(Sub, a, b)


def mul(a, b):
    return _binary(Mul, a, b)


def div(a, b):
    return _binary(Div, a, b)


def neg(x):
    return Neg.apply(x)


def pow(x, exponent):
    """x ** exponent for a Python number exponent (tensor exponents are not supported)."""
    if not isinstance(exponent, numbers.Real) or isinstance(exponent, bool):
        raise ArgumentTypeError(f"pow: the exponent must be a Python number, got {type(exponent).__name__}")
    # .item() turns a NumPy scalar into a Python number, which keeps x's dtype (NEP 50): no float64 upcast.
    return Pow.apply(x, exponent=getattr(exponent, "item", lambda: exponent)())


def rpow(base, x):
    """base ** x for a positive Python number base."""
    if not isinstance(base, numbers.Real) or isinstance(base, bool) or base <= 0:
        raise ArgumentTypeError(f"rpow: the base must be a positive Python number, got {base!r}")
    return RPow.apply(x, base=float(base))
