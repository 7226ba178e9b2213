"""batch_norm with PyTorch's semantics, on the hand-written kernels of kernels/batchnorm.py.

Training: normalise with the batch mean and the *biased* batch variance; update the running statistics in
place with the *unbiased* variance: running = (1 - momentum) * running + momentum * batch (the kernel does,
kernels/batchnorm.py's update_running or, on the GPU, inside its statistics launch).
Evaluation: normalise with the running statistics, y = x * scale + shift per channel.
Works on (N, C) and (N, C, *) inputs; kernels.batch_norm_forward views them without a copy as (N, C, H W), or
a channels-last input as its (N H W, C) pixel matrix, and the output keeps the input's layout.
"""
from .. import backend, kernels
from ..errors import ArgumentError, DTypeError, ShapeError
from ..function import Function
from ..tensor import Tensor


class BatchNorm(Function):
    name = "batch_norm"
    fresh_input_grads = True  # dx, dW, db: new arrays (views of new arrays at most)

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        gamma, beta = affine(weight, bias, x)
        # running statistics: updated in place in training, read (copied) in evaluation
        y, saved = kernels.batch_norm_forward(x, gamma, beta, eps, training, (running_mean, running_var, momentum))
        self.save_for_backward(saved)
        return y                                          # y = gamma (x - mean) / sqrt(var + eps) + beta

    def backward(self, g):
        (saved,) = self.saved_tensors
        dx, dgamma, dbeta = kernels.batch_norm_backward(saved, g)
        _, need_w, need_b = self.needs_input_grad
        return dx, dgamma if need_w else None, dbeta if need_b else None


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation over axis 1 of x (N, C, ...), torch's signature. weight/bias (C,) may be None (no
    affine); running_mean/running_var (C,) arrays or Tensors are updated in place in training, used in
    evaluation. ``momentum=None`` updates them with the cumulative average (the caller passes 1 / batches
    seen, as nn.BatchNorm2d does)."""
    x = input
    stats = checked_arguments("batch_norm", x, weight, bias, running_mean, running_var, training)
    return BatchNorm.apply(x, weight, bias, running_mean=stats[0], running_var=stats[1], training=bool(training),
                           momentum=float(momentum), eps=float(eps))


def checked_arguments(op, x, weight, bias, running_mean, running_var, training):
    """batch_norm's argument rules (shared with batch_norm_relu); the running statistics as arrays."""
    if x.ndim < 2:
        raise ShapeError(f"{op}: expected an input of shape (N, C) or (N, C, ...), got {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")
    channels = x.shape[1]
    for name, value in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
        if value is not None and tuple(value.shape) != (channels,):
            raise ShapeError(f"{op}: {name} must have shape ({channels},) for an input with {channels} channels, "
                             f"got {tuple(value.shape)}")
    stats = [s.array if isinstance(s, Tensor) else s for s in (running_mean, running_var)]
    for name, value in zip(("running_mean", "running_var"), stats):
        if value is not None and value.dtype != x.dtype:
            raise DTypeError(f"{op}: {name} has dtype {value.dtype} but the input has {x.dtype}")
        if value is not None and backend.device_of(value) != x.device:
            raise backend.DeviceError(f"{op}: {name} is on {backend.device_of(value)}, the input on {x.device}")
    if not training and (stats[0] is None or stats[1] is None):
        raise ArgumentError(f"{op}: evaluation mode needs running_mean and running_var")
    if training and x.numel() // channels <= 1:
        raise ArgumentError(f"{op}: training needs more than one value per channel, got input shape {tuple(x.shape)}")
    return stats


def affine(weight, bias, x):
    """gamma and beta, (C,) each: the given ones, or 1 and 0 for a batch-norm without affine parameters."""
    xp, c = backend.get_array_module(x), x.shape[1]
    return (weight if weight is not None else xp.ones(c, dtype=x.dtype),
            bias if bias is not None else xp.zeros(c, dtype=x.dtype))
