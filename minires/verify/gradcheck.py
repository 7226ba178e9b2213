"""Numerical gradient checking: does backward agree with float64 central differences?

The check uses a **random** upstream gradient v and compares the gradients of L(x) = sum(v * f(x)): with
v = ones, a bug that only shows up in directions orthogonal to ones (batch-norm's gradient of sum(y) is exactly
zero) would pass unseen.

Two modes:
- ``full``: perturb elements one at a time, x_j +- eps (every element, or ``max_elements`` sampled ones per
  input when there are more);
- ``directional``: perturb all inputs along random unit directions u and compare
  (L(x + eps u) - L(x - eps u)) / 2 eps with <grad, u>: two forward passes per direction, whatever the size.

Kinks: at a point where f is not differentiable (relu at 0, tied maxima) the finite difference measures
nothing useful. Such points are recognised because the one-sided differences (L(x+eps)-L(x))/eps and
(L(x)-L(x-eps))/eps disagree there, while for a smooth f they differ only by O(eps). When the inputs come from
a draw function, they are re-drawn; when they are fixed, the point is skipped and counted in the report.

A point passes when |analytic - numeric| <= atol + rtol * |numeric| (PyTorch's rule; eps 1e-6, atol 1e-5,
rtol 1e-3 by default, designed for float64).
"""
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, MiniresError
from ..grad_mode import no_grad
from ..tensor import Tensor

MODES = ("full", "directional")


@dataclass
class GradcheckReport:
    name: str
    mode: str
    passed: bool
    checked: int  # elements (full) or directions (directional) compared
    kinks: int  # points skipped because f has a kink there
    redraws: int  # times the inputs were drawn again because they sat on a kink
    max_abs_error: float
    max_rel_error: float  # |a - n| / max(|a|, |n|, atol)
    worst_input: int  # which input holds the worst point (-1 for a direction across all inputs)
    worst_index: tuple  # element index (full) or (direction number,) (directional)
    worst_analytic: float
    worst_numeric: float
    eps: float
    atol: float
    rtol: float

    def summary(self):
        verdict = "passed" if self.passed else "FAILED"
        text = (f"gradcheck {self.name} [{self.mode}]: {verdict}; {self.checked} checked, {self.kinks} on kinks, "
                f"{self.redraws} redraws; max abs error {self.max_abs_error:.3g}, max rel error "
                f"{self.max_rel_error:.3g}")
        if self.checked:
            where = "direction" if self.worst_input < 0 else f"input {self.worst_input} at"
            text += (f"; worst: {where} {self.worst_index}: analytic {self.worst_analytic:.10g}, "
                     f"numeric {self.worst_numeric:.10g}")
        else:
            text += "; no point could be compared"
        return text


class GradcheckError(MiniresError, AssertionError):
    """Raised when backward disagrees with the finite differences; ``.report`` holds the details."""

    def __init__(self, report):
        super().__init__(report.summary())
        self.report = report


def gradcheck(fn, inputs, *, mode="full", eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, max_elements=200,
              directions=16, kink_tol=1e-3, max_redraws=5, raise_exception=True, name=None):
    """Check ``fn``'s backward against central differences; return a GradcheckReport.

    fn: callable taking one Tensor per input and returning a Tensor.
    inputs: float64 arrays/Tensors (None for an absent optional input, e.g. a bias), or a callable
        ``draw(rng) -> list of arrays`` (then inputs that sit on a kink are re-drawn instead of skipped).
    Raises GradcheckError when the check fails and ``raise_exception`` is true.
    """
    if mode not in MODES:
        raise ArgumentError(f"gradcheck: mode must be one of {MODES}, got {mode!r}")
    name = name or getattr(fn, "__name__", "fn")
    rng = np.random.default_rng(seed)
    draw = inputs if callable(inputs) else None
    redraws = 0
    while True:
        arrays = _float64_copies(draw(rng) if draw else inputs)
        checker = _Checker(fn, arrays, rng, eps, kink_tol)
        if mode == "full":
            checker.check_elements(max_elements)
        else:
            checker.check_directions(directions)
        if checker.kinks and draw is not None and redraws < max_redraws:
            redraws += 1
            continue
        break
    report = checker.report(name, mode, redraws, atol, rtol)
    if not report.passed and raise_exception:
        raise GradcheckError(report)
    return report


def _float64_copies(inputs):
    arrays = []
    for i, x in enumerate(inputs):
        if x is None:
            arrays.append(None)
            continue
        array = x.array if isinstance(x, Tensor) else x
        if not hasattr(array, "dtype"):
            array = np.asarray(array, dtype=np.float64)
        if array.dtype != np.float64:
            raise DTypeError(f"gradcheck: input {i} has dtype {array.dtype}; finite differences need float64 "
                             f"inputs (use .double() or astype(np.float64))")
        arrays.append(backend.get_array_module(array).array(array, copy=True))  # an ndarray, even for a scalar
    return arrays


class _Checker:
    """Holds one draw of the inputs, the analytic gradients and the compared points."""

    def __init__(self, fn, arrays, rng, eps, kink_tol):
        self.fn, self.arrays, self.rng, self.eps, self.kink_tol = fn, arrays, rng, eps, kink_tol
        self.points = []  # (input, index, analytic, numeric)
        self.kinks = 0
        self.present = [i for i, a in enumerate(arrays) if a is not None]
        leaves = [None if a is None else Tensor._make(a.copy(), requires_grad=True) for a in arrays]
        out = fn(*leaves)
        if not isinstance(out, Tensor):
            raise ArgumentTypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        if out.dtype != np.float64:
            raise DTypeError(f"gradcheck: fn returned {out.dtype} for float64 inputs: it does not keep float64 "
                             f"end to end")
        self.upstream = backend.to_device(rng.standard_normal(out.shape), out.device)
        if out.requires_grad:
            out.backward(self.upstream)
        xp = backend.get_array_module(out.array)
        self.analytic = [None if t is None else t.grad.array if t.grad is not None else xp.zeros_like(t.array)
                         for t in leaves]
        self.base_loss = self.loss()

    def loss(self):
        """L(x) = sum(v * f(x)) at the current (possibly perturbed) inputs."""
        with no_grad():
            out = self.fn(*[None if a is None else Tensor._make(a) for a in self.arrays])
        return float((out.array * self.upstream).sum())

    def compare(self, input_index, index, analytic, loss_plus, loss_minus):
        numeric = (loss_plus - loss_minus) / (2 * self.eps)
        right = (loss_plus - self.base_loss) / self.eps
        left = (self.base_loss - loss_minus) / self.eps
        if abs(right - left) > self.kink_tol * (1 + abs(numeric)):
            self.kinks += 1
        else:
            self.points.append((input_index, index, float(analytic), numeric))

    def check_elements(self, max_elements):
        for i in self.present:
            array = self.arrays[i]
            flat = array.reshape(-1)  # a view: writing it perturbs the input
            chosen = (np.arange(array.size) if array.size <= max_elements
                      else np.sort(self.rng.choice(array.size, max_elements, replace=False)))
            analytic = backend.to_numpy(self.analytic[i]).reshape(-1)
            for j in chosen:
                original = flat[j].item()
                flat[j] = original + self.eps
                loss_plus = self.loss()
                flat[j] = original - self.eps
                loss_minus = self.loss()
                flat[j] = original
                self.compare(i, tuple(int(k) for k in np.unravel_index(j, array.shape)), analytic[j],
                             loss_plus, loss_minus)

    def check_directions(self, count):
        arrays = [self.arrays[i] for i in self.present]
        analytic = [self.analytic[i] for i in self.present]
        originals = [a.copy() for a in arrays]
        for d in range(count):
            directions = [self.rng.standard_normal(a.shape) for a in arrays]
            norm = np.sqrt(sum(float((u * u).sum()) for u in directions))
            directions = [backend.to_device(u / norm, backend.device_of(a)) for u, a in zip(directions, arrays)]
            losses = []
            for sign in (1, -1):
                for array, original, u in zip(arrays, originals, directions):
                    array[...] = original + sign * self.eps * u
                losses.append(self.loss())
            for array, original in zip(arrays, originals):
                array[...] = original
            projected = sum(float((g * u).sum()) for g, u in zip(analytic, directions))
            self.compare(-1, (d,), projected, *losses)

    def report(self, name, mode, redraws, atol, rtol):
        worst, worst_violation = None, -1.0
        max_abs = max_rel = 0.0
        failed = False
        for point in self.points:
            _, _, analytic, numeric = point
            error = abs(analytic - numeric)
            if not np.isfinite(error):  # a NaN or inf gradient fails outright (NaN compares False to all)
                error = float("inf")
            max_abs = max(max_abs, error)
            max_rel = max(max_rel, error / max(abs(analytic), abs(numeric), atol))
            violation = error / (atol + rtol * abs(numeric))
            failed = failed or violation > 1
            if violation > worst_violation:
                worst, worst_violation = point, violation
        worst = worst or (0, (), float("nan"), float("nan"))
        return GradcheckReport(
            name=name, mode=mode, passed=bool(self.points) and not failed, checked=len(self.points),
            kinks=self.kinks, redraws=redraws, max_abs_error=max_abs, max_rel_error=max_rel,
            worst_input=worst[0], worst_index=worst[1], worst_analytic=worst[2], worst_numeric=worst[3],
            eps=self.eps, atol=atol, rtol=rtol)


def gradcheck_module(module, inputs, loss_fn=None, **options):
    """gradcheck a whole model: the gradients of its inputs and of every parameter.

    The model runs on the checker's float64 leaves in place of its parameters (``nn.functional_call``), so
    cast it first with ``module.double()``; ``loss_fn(output)`` reduces the output, e.g. a cross-entropy
    (default: the output itself, with gradcheck's random upstream gradient). Options are gradcheck's; for a
    network, ``mode="directional"`` costs two forward passes per direction whatever the number of parameters.
    """
    from ..nn import functional_call

    names, parameters = zip(*module.named_parameters())
    inputs = list(inputs)

    def fn(*tensors):
        out = functional_call(module, dict(zip(names, tensors[len(inputs):])), *tensors[:len(inputs)])
        return out if loss_fn is None else loss_fn(out)

    options.setdefault("name", type(module).__name__)
    return gradcheck(fn, inputs + [p.array for p in parameters], **options)
