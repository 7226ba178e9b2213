"""Matrix products: matmul (NumPy semantics, batched and 1-D) and linear (x W^T + b, W as (out, in))."""
from .. import backend
from ..errors import ShapeError
from ..function import Function
from .broadcast import broadcast_shape, sum_to_shape


def _swap_last(a):
    return a.swapaxes(-1, -2)


class MatMul(Function):
    name = "matmul"

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return backend.get_array_module(a).matmul(a, b)

    def backward(self, g):
        a, b = self.saved_tensors
        if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
            return (g * b if self.needs_input_grad[0] else None,
                    g * a if self.needs_input_grad[1] else None)
        # Treat a 1-D operand as a matrix (row for a, column for b) and put the dropped axis back into g.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g[..., None, :] if a.ndim == 1 else g
        g2 = g2[..., None] if b.ndim == 1 else g2
        xp = backend.get_array_module(g)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = sum_to_shape(xp.matmul(g2, _swap_last(b2)), a2.shape).reshape(a.shape)  # dA = G B^T
        if self.needs_input_grad[1]:
            grad_b = sum_to_shape(xp.matmul(_swap_last(a2), g2), b2.shape).reshape(b.shape)  # dB = A^T G
        return grad_a, grad_b


class Linear(Function):
    name = "linear"

    def forward(self, x, weight, bias):
        self.save_for_backward(x, weight)
        y = x @ weight.T  # (..., out)
        return y if bias is None else y + bias

    def backward(self, g):
        x, weight = self.saved_tensors
        need_x, need_w, need_b = self.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])  # (rows, out)
        return (g @ weight if need_x else None,  # dx = g W
                g2.T @ x.reshape(-1, x.shape[-1]) if need_w else None,  # dW = g^T x, (out, in)
                g2.sum(axis=0) if need_b else None)  # db = sum of g over rows


def matmul(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least one axis, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ShapeError(f"matmul: inner sizes differ: {a.shape} @ {b.shape} ({k_a} != {k_b})")
    if a.ndim > 2 and b.ndim > 2:
        broadcast_shape("matmul (batch axes)", a.shape[:-2], b.shape[:-2])
    return MatMul.apply(a, b)


def linear(input, weight, bias=None):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch; x is (..., in_features)."""
    x = input
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input's last axis must have {weight.shape[1]} features (weight {weight.shape}), "
                         f"got input of shape {x.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return Linear.apply(x, weight, bias)
