"""Elementwise arithmetic with NumPy broadcasting: + - * / neg and powers.

Each backward line reads "local derivative x upstream gradient", then ``sum_to_shape`` undoes broadcasting.
"""
import math
import numbers

from ..errors import ArgumentTypeError
from ..function import Function
from ..tensor import Tensor
from .broadcast import broadcast_shape, sum_to_shape
from .operands import as_tensor, promote


class Add(Function):
    name = "add"

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        grad_a = sum_to_shape(g, self.a_shape) if need_a else None  # d(a + b)/da = 1
        grad_b = sum_to_shape(g, self.b_shape) if need_b else None  # d(a + b)/db = 1
        return grad_a, grad_b


class Sub(Function):
    name = "sub"

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, g):
        need_a, need_b = self.needs_input_grad
        grad_a = sum_to_shape(g, self.a_shape) if need_a else None  # d(a - b)/da = 1
        grad_b = sum_to_shape(-g, self.b_shape) if need_b else None  # d(a - b)/db = -1
        return grad_a, grad_b


class Mul(Function):
    name = "mul"

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        grad_a = sum_to_shape(b * g, a.shape) if need_a else None  # d(ab)/da = b
        grad_b = sum_to_shape(a * g, b.shape) if need_b else None  # d(ab)/db = a
        return grad_a, grad_b


class Div(Function):
    name = "div"

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, g):
        a, b = self.saved_tensors
        need_a, need_b = self.needs_input_grad
        grad_a = sum_to_shape(g / b, a.shape) if need_a else None  # d(a/b)/da = 1/b
        # d(a/b)/db = -(a/b)/b, divided twice rather than by b*b, which under- or overflows first (b = 1e-23)
        grad_b = sum_to_shape(-g * ((a / b) / b), b.shape) if need_b else None
        return grad_a, grad_b


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
    """Apply a broadcasting binary op; a Python number or array beside a Tensor becomes a Tensor like it."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise ArgumentTypeError(f"{fn.name}: expected at least one Tensor, got {type(a).__name__} and "
                                    f"{type(b).__name__}")
        b = promote(b, a)
        a = as_tensor(a, like=b)
    elif not isinstance(b, Tensor):
        a = promote(a, b)
        b = as_tensor(b, like=a)
    broadcast_shape(fn.name, a.shape, b.shape)  # a clear error before any array arithmetic
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
    exponent = getattr(exponent, "item", lambda: exponent)()
    return Pow.apply(promote(x, exponent), exponent=exponent)


def rpow(base, x):
    """base ** x for a positive Python number base."""
    if not isinstance(base, numbers.Real) or isinstance(base, bool) or base <= 0:
        raise ArgumentTypeError(f"rpow: the base must be a positive Python number, got {base!r}")
    return RPow.apply(promote(x, float(base)), base=float(base))
