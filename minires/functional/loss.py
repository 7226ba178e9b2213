"""Losses: cross_entropy (log-softmax and negative log-likelihood in one stable op, with PyTorch's label
smoothing) and mse_loss (composed from the elementwise ops)."""
import numpy as np

from .. import backend
from ..errors import ArgumentError, DeviceError, DTypeError, ShapeError
from ..function import Function
from .operands import not_implemented
from ..tensor import Tensor
from .softmax import stable_log_softmax

REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """loss_n = -log softmax(logits_n)[target_n]; reduced by mean (over N), sum, or not at all."""
    name = "cross_entropy"

    def forward(self, logits, target, reduction, label_smoothing, checked):
        xp = backend.get_array_module(logits)
        rows = xp.arange(logits.shape[0])
        log_p = stable_log_softmax(logits, axis=1)  # (N, C)
        if not checked:  # a device target, not read back: a class outside [0, C) makes that row's loss NaN
            valid = (target >= 0) & (target < logits.shape[1])
            target = xp.where(valid, target, 0)
        losses = -log_p[rows, target]  # (N,)
        if not checked:
            losses = xp.where(valid, losses, xp.nan).astype(logits.dtype, copy=False)
        if label_smoothing:  # the target is (1 - s) onehot + s / C: loss = (1 - s) nll + s mean_c(-log p_c)
            losses = (1 - label_smoothing) * losses - label_smoothing * log_p.mean(axis=1)
        self.save_for_backward(log_p, target)
        self.reduction, self.label_smoothing = reduction, label_smoothing
        if reduction == "none":
            return losses
        return losses.sum() if reduction == "sum" else losses.mean()

    def backward(self, g):
        log_p, target = self.saved_tensors
        xp = backend.get_array_module(log_p)
        n, c = log_p.shape
        s = self.label_smoothing
        # d loss_n / d logits_n = softmax(logits_n) - target distribution_n ((1 - s) onehot + s / C)
        grad = xp.exp(log_p)
        grad[xp.arange(n), target] -= 1 - s
        if s:
            grad -= s / c
        if self.reduction == "none":
            return grad * g[:, None]
        return grad * (g / n if self.reduction == "mean" else g)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy of (N, C) logits against integer class targets of shape (N,) (array or Tensor);
    ``label_smoothing`` s mixes the one-hot target with the uniform distribution, as PyTorch does.
    A target outside [0, C) raises ArgumentError on the CPU; on the GPU it is not read back (that would stall
    the step) and gives that row a NaN loss instead, which minires train reports as a diverged loss (torch
    stops such a GPU run with a device-side assert). torch's signature: class ``weight`` is not implemented
    yet; ``ignore_index`` (-100) may not occur among the targets; size_average/reduce are torch's legacy
    spelling of ``reduction``."""
    logits = input
    reduction = legacy_reduction(size_average, reduce, reduction)
    not_implemented("cross_entropy", weight=(weight, None))
    if reduction not in REDUCTIONS:
        raise ArgumentError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing <= 1:
        raise ArgumentError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    if logits.ndim != 2:
        raise ShapeError(f"cross_entropy: expected logits of shape (N, C), got {logits.shape}")
    target = target.array if isinstance(target, Tensor) else target
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
    if ignore_index < 0 and backend.device_of(target) == "cpu" and target.size and (target == ignore_index).any():
        raise ArgumentError(f"cross_entropy: minires does not implement ignore_index yet (a target is "
                            f"{ignore_index})")
    checked = backend.device_of(target) == "cpu"  # checking a GPU target would wait for the device
    if checked and target.size and (int(target.min()) < 0 or int(target.max()) >= n_classes):
        raise ArgumentError(f"cross_entropy: target values must lie in [0, {n_classes}), got values from "
                            f"{int(target.min())} to {int(target.max())}")
    return CrossEntropy.apply(logits, target=target, reduction=reduction, label_smoothing=float(label_smoothing),
                              checked=checked)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error, (input - target)^2 reduced by mean, sum or not at all (differentiable in both)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    not_implemented("mse_loss", weight=(weight, None))
    if reduction not in REDUCTIONS:
        raise ArgumentError(f"mse_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(input, Tensor):
        raise ArgumentError(f"mse_loss: input must be a Tensor, got {type(input).__name__}")
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=input.dtype, device=input.device)
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(f"mse_loss: target shape {tuple(target.shape)} differs from input shape "
                         f"{tuple(input.shape)} (minires does not broadcast a loss's target)")
    squared = (input - target) ** 2
    return squared if reduction == "none" else squared.sum() if reduction == "sum" else squared.mean()


def legacy_reduction(size_average, reduce, reduction):
    """torch's old size_average= / reduce= flags as a reduction (its rule: reduce=False wins, then
    size_average=False means sum); left out, ``reduction`` stands."""
    if size_average is None and reduce is None:
        return reduction
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"
