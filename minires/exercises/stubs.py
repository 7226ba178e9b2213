"""The exercises as a learner starts them: one forward and one backward per exercise, each a stub that raises
"not implemented yet: write me". Copy one (``minires.exercises.template("relu")`` gives its text), fill it in, and
hand both functions to ``minires.exercises.check("relu", relu_forward, relu_backward)``.

The interface (as in CS231n's layers): ``forward(inputs...)`` returns ``(out, cache)``, where the cache holds
whatever backward needs; ``backward(dout, cache)`` returns the gradient of the loss with respect to each input,
in the order forward takes them (a single array when there is one input). Every array is float64 NumPy.
"""
from ..errors import MiniresError


class NotWrittenYet(MiniresError, NotImplementedError):
    """An exercise stub the learner has not filled in yet."""


def _write_me(name):
    raise NotWrittenYet(f"{name} is not implemented yet: write me (the docstring says what it takes and returns)")


def relu_forward(x):
    """y = max(x, 0) elementwise. Returns (y, cache)."""
    _write_me("relu_forward")


def relu_backward(dy, cache):
    """dL/dx from dL/dy. Returns dx."""
    _write_me("relu_backward")


def linear_forward(x, w, b):
    """y = x W^T + b for x (N, IN), w (OUT, IN) (PyTorch's layout), b (OUT,). Returns (y, cache)."""
    _write_me("linear_forward")


def linear_backward(dy, cache):
    """Returns (dx, dw, db), each the shape of its input."""
    _write_me("linear_backward")


def residual_join_forward(branch, shortcut):
    """The join at the end of a residual block: y = relu(branch + shortcut). Returns (y, cache)."""
    _write_me("residual_join_forward")


def residual_join_backward(dy, cache):
    """Returns (dbranch, dshortcut)."""
    _write_me("residual_join_backward")


def residual_block_forward(x, w1, w2):
    """A residual block on vectors: y = relu(F(x) + x) with F(x) = relu(x W1^T) W2^T; x (N, D), w1 (H, D),
    w2 (D, H). x is used twice (fan-out): by the branch F and by the shortcut. Returns (y, cache)."""
    _write_me("residual_block_forward")


def residual_block_backward(dy, cache):
    """Returns (dx, dw1, dw2). dx must collect the gradient of both uses of x."""
    _write_me("residual_block_backward")


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch-norm in training mode over x (N, C, H, W): per channel c, with the batch's mean and biased
    variance over N, H, W: y = gamma_c (x - mean_c) / sqrt(var_c + eps) + beta_c. Returns (y, cache)."""
    _write_me("batchnorm_forward")


def batchnorm_backward(dy, cache):
    """Returns (dx, dgamma, dbeta). The mean and the variance depend on x too (the three-term dx)."""
    _write_me("batchnorm_backward")


def conv2d_forward(x, w, b, stride=1, padding=0):
    """Convolution by im2col: x (N, C, H, W), w (OC, C, KH, KW), b (OC,); output (N, OC, OH, OW) with
    OH = (H + 2 padding - KH) // stride + 1 (same for OW). Unfold x into columns (im2col), then one matrix
    product. Returns (y, cache)."""
    _write_me("conv2d_forward")


def conv2d_backward(dy, cache):
    """Returns (dx, dw, db): dw from the columns, dx by folding W^T dy back onto the image (col2im)."""
    _write_me("conv2d_backward")


def max_pool_forward(x, kernel_size=2, stride=2):
    """Max pooling over x (N, C, H, W) with a square window, no padding. Returns (y, cache)."""
    _write_me("max_pool_forward")


def max_pool_backward(dy, cache):
    """Returns dx: each output's gradient goes to the input element that won its window."""
    _write_me("max_pool_backward")
