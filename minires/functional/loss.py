"""cross_entropy: log-softmax and negative log-likelihood in one stable op."""
import numpy as np

from .. import backend
from ..errors import ArgumentError, DeviceError, DTypeError, ShapeError
from ..function import Function
from ..tensor import Tensor
from .softmax import stable_log_softmax

REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """loss_n = -log softmax(logits_n)[target_n]; reduced by mean (over N), sum, or not at all."""
    name = "cross_entropy"

    def forward(self, logits, target, reduction):
        xp = backend.get_array_module(logits)
        rows = xp.arange(logits.shape[0])
        log_p = stable_log_softmax(logits, axis=1)  # (N, C)
        losses = -log_p[rows, target]  # (N,)
        self.save_for_backward(log_p, target)
        self.reduction = reduction
        if reduction == "none":
            return losses
        return losses.sum() if reduction == "sum" else losses.mean()

    def backward(self, g):
        log_p, target = self.saved_tensors
        xp = backend.get_array_module(log_p)
        n = log_p.shape[0]
        # d loss_n / d logits_n = softmax(logits_n) - onehot(target_n)
        grad = xp.exp(log_p)
        grad[xp.arange(n), target] -= 1
        if self.reduction == "none":
            return grad * g[:, None]
        return grad * (g / n if self.reduction == "mean" else g)


def cross_entropy(logits, target, reduction="mean"):
    """Cross-entropy of (N, C) logits against integer class targets of shape (N,) (array or Tensor)."""
    if reduction not in REDUCTIONS:
        raise ArgumentError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if logits.ndim != 2:
        raise ShapeError(f"cross_entropy: expected logits of shape (N, C), got {logits.shape}")
    target = target.data if isinstance(target, Tensor) else target
    if not hasattr(target, "dtype"):
        target = np.asarray(target)
    if target.dtype.kind not in "iu":
        raise DTypeError(f"cross_entropy: target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != logits.shape[:1]:
        raise ShapeError(f"cross_entropy: target must have shape ({logits.shape[0]},) to match logits "
                         f"{logits.shape}, got {target.shape}")
    if backend.device_of(target) != logits.device:
        raise DeviceError(f"cross_entropy: target is on {backend.device_of(target)}, logits on {logits.device}")
    n_classes = logits.shape[1]
    if target.size and (int(target.min()) < 0 or int(target.max()) >= n_classes):
        raise ArgumentError(f"cross_entropy: target values must lie in [0, {n_classes}), got values from "
                         f"{int(target.min())} to {int(target.max())}")
    return CrossEntropy.apply(logits, target=target, reduction=reduction)
