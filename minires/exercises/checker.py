"""``check(name, forward, backward)``: is a learner's forward and backward right, and if not, what is wrong?

For each geometry of the exercise, in float64, with a random upstream gradient dy (the gradient of sum(y) would
hide batch-norm bugs: it is exactly zero there):
1. forward's output against minires' engine (its kernels) and against torch when torch is installed;
2. each gradient backward returns against the engine's, against torch's, and against central finite
   differences of the learner's own forward (a gradcheck: it needs no reference at all).
The report names the first wrong thing, by how much, the first wrong element with the value got and the value
expected, and a hint. Nothing is printed: the report is returned (a notebook shows it; ``print`` it in a script).
"""
import traceback

import numpy as np

from .. import functional as mr_functional
from ..errors import UnknownNameError
from ..tensor import Tensor
from .catalog import EXERCISES
from .stubs import NotWrittenYet

ENGINE_TOLERANCE = dict(rtol=1e-6, atol=1e-8)        # float64 against float64: only rounding differs
NUMERIC_TOLERANCE = dict(rtol=1e-4, atol=1e-6)       # central differences, eps 1e-6: error ~1e-9 here
EPS = 1e-6


class Report:
    """What ``check`` found: ``passed``, and ``lines`` (``str(report)``) saying so in words."""

    def __init__(self, name):
        self.name, self.lines, self.passed = name, [], True

    def ok(self, text):
        self.lines.append(f"  ok     {text}")

    def fail(self, text):
        self.passed = False
        self.lines.append(f"  WRONG  {text}")

    def note(self, text):
        self.lines.append(f"         {text}")

    def __str__(self):
        verdict = "passed" if self.passed else "not yet"
        return "\n".join([f"exercise {self.name}: {verdict}"] + self.lines)

    __repr__ = __str__


def check(name, forward, backward, seed=0, use_torch=True):
    """Check a learner's ``forward(*inputs, **options) -> (out, cache)`` and ``backward(dout, cache) ->
    gradients`` for exercise ``name`` (see ``names()``); returns a Report (``.passed``, printable)."""
    if name not in EXERCISES:
        raise UnknownNameError(f"no exercise named {name!r}; the exercises: {', '.join(EXERCISES)}")
    exercise = EXERCISES[name]
    torch = _torch() if use_torch else None
    report = Report(name)
    for case in exercise.cases:
        where = "" if not case else " (" + ", ".join(f"{k}={v}" for k, v in case.items()) + ")"
        if not _check_case(exercise, case, where, forward, backward, np.random.default_rng(seed), torch, report):
            break
    if torch is None:
        report.note("torch is not installed: compared with minires' kernels and finite differences only")
    return report


def _check_case(exercise, case, where, forward, backward, rng, torch, report):
    inputs = exercise.draw(rng)
    expected_out, dout, expected_grads = _engine_run(exercise, inputs, case, rng)
    torch_out, torch_grads = _torch_run(torch, exercise, inputs, case, dout) if torch else (None, None)
    # 1. forward
    result = _call(report, f"forward{where}", forward, *[a.copy() for a in inputs], **case)
    if result is None:
        return False
    if not (isinstance(result, tuple) and len(result) == 2):
        report.fail(f"forward{where} must return (out, cache); it returned {_describe(result)}")
        return False
    out, cache = result
    if not _matches(report, f"forward{where}", "out", out, expected_out, torch_out, None, exercise.hints["forward"]):
        report.note("fix the forward first: the gradients are checked against it")
        return False
    # 2. backward
    grads = _call(report, f"backward{where}", backward, dout.copy(), cache)
    if grads is None:
        return False
    several = len(exercise.gradients) > 1  # then a list is a list of gradients; with one, it is the gradient
    grads = grads if isinstance(grads, tuple) or (several and isinstance(grads, list)) else (grads,)
    if len(grads) != len(exercise.gradients):
        report.fail(f"backward{where} returned {len(grads)} gradient(s); expected {len(exercise.gradients)}: "
                    f"{', '.join(exercise.gradients)}")
        return False
    numeric = _numeric_gradients(forward, inputs, case, dout)
    right = True
    for index, name in enumerate(exercise.gradients):
        right &= _matches(report, f"{name}{where}", name, grads[index], expected_grads[index],
                          torch_grads[index] if torch_grads else None, numeric[index], exercise.hints[name])
    return right


def _call(report, what, function, *args, **kwargs):
    """function(*args, **kwargs), or None after reporting what went wrong (a stub, an exception, None)."""
    try:
        value = function(*args, **kwargs)
    except NotWrittenYet as error:
        report.fail(f"{what}: {error}")
        return None
    except Exception as error:  # the learner's code: say what it raised and where, and go on to the report
        frame = traceback.extract_tb(error.__traceback__)[-1]
        report.fail(f"{what} raised {type(error).__name__}: {error} (line {frame.lineno} of {frame.filename}: "
                    f"{frame.line})")
        return None
    if value is None:
        report.fail(f"{what} returned None: did it forget its return statement?")
    return value


def _matches(report, what, name, got, expected, torch_value, numeric, hint):
    """Compare one array with the engine's value (and torch's, and the finite differences'); report it."""
    got = np.asarray(got, dtype=np.float64) if _is_numeric(got) else got
    if not isinstance(got, np.ndarray):
        report.fail(f"{what}: expected an array of shape {expected.shape}, got {_describe(got)}")
        return False
    if got.shape != expected.shape:
        transposed = " (transposed?)" if got.shape == expected.shape[::-1] else ""
        report.fail(f"{what}: shape {got.shape}, expected {expected.shape}{transposed}. Hint: {hint}")
        return False
    references = [("minires' kernels", expected, ENGINE_TOLERANCE)]
    if torch_value is not None:
        references.append(("torch", torch_value, ENGINE_TOLERANCE))
    if numeric is not None:
        references.append(("finite differences", numeric, NUMERIC_TOLERANCE))
    errors = []
    for source, reference, tolerance in references:
        wrong = ~np.isclose(got, reference, **tolerance)
        error = float(np.abs(got - reference).max())  # (every exercise's arrays have elements)
        if wrong.any():
            first = tuple(int(i) for i in np.argwhere(wrong)[0])
            scale = float(np.abs(reference).max())
            others = "; ".join(f"{s} {r[first]:.6g}" for s, r, _ in references if s != source)
            report.fail(f"{what}: max abs error {error:.3g} against {source} (its largest |value| is {scale:.3g}); "
                        f"{wrong.sum()} of {got.size} elements wrong, the first at {name}"
                        f"[{', '.join(map(str, first))}]: got {got[first]:.6g}, expected {reference[first]:.6g}"
                        f"{' (' + others + ')' if others else ''}. Hint: {hint}")
            return False
        errors.append(f"{error:.1e} against {source}")
    report.ok(f"{what}: max abs error " + ", ".join(errors))
    return True


def _numeric_gradients(forward, inputs, case, dout):
    """Central differences of L = sum(dout * forward(inputs)[0]) for every element of every input."""
    def loss(arrays):
        return float((np.asarray(forward(*arrays, **case)[0]) * dout).sum())
    gradients = []
    for index, array in enumerate(inputs):
        gradient = np.zeros_like(array)
        for position in np.ndindex(array.shape):
            above, below = [a.copy() for a in inputs], [a.copy() for a in inputs]
            above[index][position] += EPS
            below[index][position] -= EPS
            gradient[position] = (loss(above) - loss(below)) / (2 * EPS)
        gradients.append(gradient)
    return gradients


def _engine_run(exercise, inputs, case, rng):
    """minires' output for the inputs, a random upstream gradient dout, and minires' input gradients."""
    tensors = [Tensor(a.copy(), requires_grad=True) for a in inputs]
    out = exercise.engine(mr_functional, tensors, case)
    dout = rng.standard_normal(out.shape)
    out.backward(dout)
    return out.numpy(), dout, [t.grad.numpy() for t in tensors]


def _torch_run(torch, exercise, inputs, case, dout):
    tensors = [torch.tensor(a, requires_grad=True) for a in inputs]
    out = exercise.engine(torch.nn.functional, tensors, case)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _is_numeric(value):
    return isinstance(value, (np.ndarray, np.generic, float, int, list)) and not isinstance(value, bool)


def _describe(value):
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"{type(value).__name__}"
