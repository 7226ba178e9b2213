"""Layer-by-layer parity of a minires model with its PyTorch twin (minires.torch_reference), given the same
weights: forward outputs in training and evaluation mode, the cross-entropy loss, every parameter's
gradient, and the batch-norm running statistics after the training-mode forward.

Errors are relative to the tensor's largest magnitude: max|minires - torch| / max|torch|.
Requires torch (``pip install torch==2.13.0`` for the CPU build).

``run_parity`` compares in one dtype; ``check_parity`` is what ``minires parity`` runs and what a user can
trust on any machine: gradients are judged in float64 (where two correct engines agree to ~1e-12), forward
values in both float64 and float32.

Why not float32 gradients: a ReLU input within float32 rounding of zero can land on opposite sides of zero in
the two engines (a "kink flip"). Forward values barely notice, but that one element's gradient is passed back
in one engine and dropped in the other, and a plain network carries the difference to every earlier layer.
Which inputs flip depends on the machine's BLAS and CPU, so a float32 gradient comparison of a whole network
is not well-posed. With ``dtype="float32"`` the float32 gradients are still compared, and a layer over
tolerance is *explained* (not failed) when kinks flipped and float64 agrees.
"""
import contextlib
from dataclasses import dataclass, field

import numpy as np

from .. import functional as F
from .. import models, op_hooks
from ..errors import ArgumentError
from ..nn import Sequential
from ..tensor import Tensor

MODES = ("train", "eval")


@dataclass
class LayerParity:
    name: str
    forward: dict = field(default_factory=lambda: dict.fromkeys(MODES, 0.0))  # per mode
    gradient: dict = field(default_factory=lambda: dict.fromkeys(MODES, 0.0))  # worst over its parameters
    running_stats: float = 0.0  # after the training-mode forward

    def worst(self):
        return max(list(self.forward.values()) + list(self.gradient.values()) + [self.running_stats])


@dataclass
class ParityReport:
    model: str
    input_shape: tuple
    dtype: str
    tolerance: float
    layers: list = field(default_factory=list)
    logits: dict = field(default_factory=dict)  # per mode
    loss: dict = field(default_factory=dict)  # per mode
    kink_flips: dict = field(default_factory=dict)  # per mode

    @property
    def worst(self):
        return max(list(self.logits.values()) + list(self.loss.values()) + [row.worst() for row in self.layers])

    @property
    def passed(self):
        return bool(np.isfinite(self.worst)) and self.worst <= self.tolerance


def relative_error(ours, theirs):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        return float("inf")
    scale = np.abs(theirs).max() if theirs.size else 0.0
    return float(np.abs(ours - theirs).max() / scale) if scale > 0 else float(np.abs(ours - theirs).max())


def table_layers(model):
    """The rows of the table: the model's top-level layers, with each stage expanded into its blocks."""
    names = []
    for name, child in model.named_children():
        if isinstance(child, Sequential):
            names += [f"{name}.{block}" for block, _ in child.named_children()]
        else:
            names.append(name)
    return names


def run_parity(name, batch=4, size=None, seed=0, tolerance=1e-3, dtype="float32", **model_kwargs):
    """Build ``name`` in minires (with ``seed``) and in PyTorch, copy the weights across, and compare both
    engines in training mode, then in evaluation mode: forward, cross-entropy, backward."""
    import torch

    from . import torch_reference

    model = models.get(name, seed=seed, **model_kwargs).astype(dtype)
    twin = torch_reference.build(name, **model_kwargs).to(getattr(torch, dtype))
    twin.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in model.state_dict().items()}, strict=True)
    size = size or (32 if isinstance(model, models.CifarResNet) else 64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, model.conv1.in_channels, size, size)).astype(dtype)
    target = rng.integers(0, model.fc.out_features, batch)
    report = ParityReport(name, x.shape, dtype, tolerance)
    rows = {layer: LayerParity(layer) for layer in table_layers(model)}
    report.layers = list(rows.values())

    ours_out, theirs_out = {}, {}
    for layer in rows:
        _module(model, layer).register_forward_hook(lambda m, i, o, key=layer: ours_out.__setitem__(key, o.numpy()))
        twin.get_submodule(layer).register_forward_hook(
            lambda m, i, o, key=layer: theirs_out.__setitem__(key, o.detach().numpy()))
    theirs_params = dict(twin.named_parameters())
    for mode in MODES:
        model.train(mode == "train"), twin.train(mode == "train")
        model.zero_grad(), twin.zero_grad()
        with _relu_inputs() as ours_relu, _torch_relu_inputs(twin) as theirs_relu:
            logits = model(Tensor(x))
            t_logits = twin(torch.from_numpy(x))
        report.kink_flips[mode] = count_kink_flips(ours_relu, theirs_relu)
        loss = F.cross_entropy(logits, target)
        t_loss = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(target))
        loss.backward()
        t_loss.backward()
        report.logits[mode] = relative_error(logits.numpy(), t_logits.detach().numpy())
        report.loss[mode] = relative_error(loss.numpy(), t_loss.detach().numpy())
        for layer, row in rows.items():
            row.forward[mode] = relative_error(ours_out[layer], theirs_out[layer])
        for key, param in model.named_parameters():
            row = rows[_row_of(key, rows)]
            error = relative_error(param.grad.numpy(), theirs_params[key].grad.numpy())
            row.gradient[mode] = max(row.gradient[mode], error)
        if mode == "train":
            theirs_buffers = dict(twin.named_buffers())
            for key, buffer in model.named_buffers():
                if key.endswith(("running_mean", "running_var")):
                    row = rows[_row_of(key, rows)]
                    error = relative_error(buffer.numpy(), theirs_buffers[key].numpy())
                    row.running_stats = max(row.running_stats, error)
    return report


def count_kink_flips(ours, theirs):
    """How many ReLU inputs are positive in one engine and not in the other (a whole array counts when the
    two engines recorded different shapes)."""
    return sum(int(((a > 0) != (b > 0)).sum()) if a.shape == b.shape else a.size for a, b in zip(ours, theirs))


@contextlib.contextmanager
def _relu_inputs():
    """Record the input of every ReLU that minires applies (relu and the ReLU of residual_add), through an op
    hook."""
    recorded = []

    def record(node, phase, inputs, run):
        result = run()
        if phase == "forward" and node.op_name() == "relu":
            recorded.append(inputs[0].copy())
        elif phase == "forward" and node.op_name() == "residual_add" and node.relu:
            recorded.append(inputs[0] + inputs[1])
        return result

    with op_hooks.registered(record, every_op=True):  # fused blocks run unfused: every ReLU is seen
        yield recorded


@contextlib.contextmanager
def _torch_relu_inputs(twin):
    """Record the input of every ReLU module of the PyTorch twin, through forward hooks."""
    from torch import nn

    recorded = []
    handles = [module.register_forward_hook(lambda m, inputs, output: recorded.append(inputs[0].detach().numpy().copy()))
               for module in twin.modules() if isinstance(module, nn.ReLU)]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def _module(model, dotted):
    module = model
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _row_of(key, rows):
    """The table row a parameter or buffer key belongs to (the longest row name that prefixes it)."""
    return max((row for row in rows if key.startswith(row + ".")), key=len)


TOLERANCE = {"float32": 1e-3, "float64": 1e-9}


@dataclass
class ParityCheck:
    """float64 and float32 parity of one model, judged as ``dtype`` asks: None (the default) judges forward
    values in both dtypes and gradients in float64; "float32" also judges float32 gradients, explaining
    kink-flip differences by float64; "float64" judges float64 alone."""
    dtype: str  # "default", "float32" or "float64"
    double: ParityReport
    single: ParityReport = None  # absent for dtype "float64"

    def verdict(self, row_name):
        """'ok', 'FAILED', or 'explained by N kink flips (float64 agrees to X)' for one table row."""
        double_row = _row(self.double, row_name)
        if double_row.worst() > self.double.tolerance or not np.isfinite(double_row.worst()):
            return "FAILED"
        if self.single is None:
            return "ok"
        single_row = _row(self.single, row_name)
        if not _forward_within(single_row, self.single.tolerance):
            return "FAILED"
        if self.dtype != "float32" or max(single_row.gradient.values()) <= self.single.tolerance:
            return "ok"
        flips = sum(self.single.kink_flips.values())
        if flips:
            return f"explained by {flips} kink flips (float64 agrees to {double_row.worst():.1e})"
        return "FAILED"

    @property
    def worst(self):
        """The largest relative error among the judged values."""
        worst = self.double.worst
        if self.single is not None:
            judged = self.single.layers if self.dtype == "float32" else []
            forward = [max(list(row.forward.values()) + [row.running_stats]) for row in self.single.layers]
            worst = max([worst, *forward, *(row.worst() for row in judged), *self.single.logits.values(),
                         *self.single.loss.values()])
        return worst

    @property
    def passed(self):
        totals_ok = max(list(self.double.logits.values()) + list(self.double.loss.values())) <= self.double.tolerance
        if self.single is not None:
            totals_ok &= max(list(self.single.logits.values()) +
                             list(self.single.loss.values())) <= self.single.tolerance
        return bool(totals_ok) and all(self.verdict(row.name) != "FAILED" for row in self.double.layers)


def check_parity(name, dtype=None, batch=4, size=None, seed=0, tolerance=TOLERANCE["float32"],
                 tolerance64=TOLERANCE["float64"], **model_kwargs):
    """Run ``name`` against its PyTorch twin in float64 and (unless ``dtype == "float64"``) float32, and judge
    it as ParityCheck describes. ``tolerance`` applies to float32 values, ``tolerance64`` to float64 ones."""
    if dtype not in (None, "float32", "float64"):
        raise ArgumentError(f"parity: dtype must be float32, float64 or None (both), got {dtype!r}")
    double = run_parity(name, batch, size, seed, tolerance64, "float64", **model_kwargs)
    single = None if dtype == "float64" else run_parity(name, batch, size, seed, tolerance, "float32", **model_kwargs)
    return ParityCheck(dtype or "default", double, single)


def _forward_within(row, tolerance):
    return max(list(row.forward.values()) + [row.running_stats]) <= tolerance


def _row(report, name):
    return next(row for row in report.layers if row.name == name)
