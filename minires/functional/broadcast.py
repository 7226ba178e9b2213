"""NumPy broadcasting: checking it in forward, undoing it in backward."""
import numpy as np

from ..errors import ShapeError


def broadcast_shape(op, *shapes):
    """The broadcast result shape, or a ShapeError naming the op and the shapes that do not fit."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be broadcast "
                         f"together") from None


def sum_to_shape(grad, shape):
    """Sum ``grad`` over the axes that broadcasting stretched, so it has the input's ``shape`` again.

    Forward broadcast (2, 1) against (3, 2, 4) into (3, 2, 4); the gradient of the (2, 1) operand is the
    upstream gradient summed over the new leading axis 0 and the stretched axis 2.
    """
    if grad.shape == tuple(shape):
        return grad
    leading = grad.ndim - len(shape)
    stretched = tuple(leading + i for i, n in enumerate(shape) if n == 1 and grad.shape[leading + i] != 1)
    return grad.sum(axis=tuple(range(leading)) + stretched, keepdims=True).reshape(shape)
