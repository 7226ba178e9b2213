"""The Hessian of a training loss: Hessian-vector products, the largest Hessian eigenvalues and the Hessian
trace, for any model and loss, in float64.

minires has no double backward, so a Hessian-vector product is a central difference of gradients along the
unit vector u = v / ||v||, a step of length eps in weight space:

    H v  ~  ||v|| (g(w + eps u) - g(w - eps u)) / (2 eps)     (g = dL/dw, the model's flattened parameters w)

with the truncation error O(eps^2) and rounding error O(1e-16 / eps) of any central difference. ReLU networks
need one more thing. Where a step flips a ReLU on or off, the gradient jumps, and the difference divided by
2 eps is wrong by O(1 / eps): Lanczos then reports eigenvalues of +-4e5 for a plain-20 whose largest is 423.
The exact Hessian (double backward, relu'' = 0) is the Hessian of the smooth piece of the loss that w lies on,
the one with w's ReLU pattern. So both gradients are taken with every ReLU's on/off pattern frozen at w's
(``frozen_relus``: relu and the residual join's ReLU, through an op hook; other kinks, such as max-pooling's,
are not frozen). On a float64 plain-20 against torch's double backward, the relative error of H v was 30 to
770 unfrozen at eps 1e-4 and 1e-3; frozen, 1.3e-8 at 1e-3, 1.6e-10 at 1e-4 (the default), 1e-9 at 1e-5 and
1e-8 at 1e-6 (rounding), and Lanczos's extreme eigenvalues agreed to 8 digits. tests/test_hessian.py checks
the products against torch on ResNet-20 and plain-20 and against the dense Hessian of a small tanh network. From it:
- ``top_eigenvalues``: power iteration with deflation (the eigenvalues of largest magnitude, in order);
- ``lanczos_eigenvalues``: the Lanczos method, whose extreme Ritz values (the largest and the most negative
  eigenvalue) converge in far fewer products than power iteration needs;
- ``hessian_trace``: Hutchinson's estimator, the mean of v^T H v over random +-1 vectors v (E[v^T H v] = tr H).
The model should be float64 (``model.double()``) and in the mode the loss is meant in (batch-norm in
evaluation mode keeps the loss a function of the weights alone).
"""
import contextlib

import numpy as np

from .. import backend, op_hooks
from ..errors import ArgumentError, ShapeError
from ..grad_mode import no_grad

DEFAULT_EPS = 1e-4  # the step length in weight space


def parameters_of(model):
    """The parameters that require grad, in order."""
    return [p for p in model.parameters() if p.requires_grad]


def flat_weights(model):
    return np.concatenate([p.numpy().astype(np.float64).ravel() for p in parameters_of(model)])


def set_flat_weights(model, vector):
    """Put a flat (host) vector back into the parameters, wherever they live."""
    offset = 0
    for p in parameters_of(model):
        size = p.array.size
        p.array[...] = backend.to_device(vector[offset:offset + size].reshape(p.array.shape).astype(p.dtype), p.device)
        offset += size


def gradient(model, loss_fn, weights=None):
    """dL/dw at ``weights`` (the model's own when None), flattened; the model's weights are left as they were."""
    original = flat_weights(model)
    if weights is not None:
        set_flat_weights(model, weights)
    try:
        for p in parameters_of(model):
            p.grad = None
        loss_fn(model).backward()
        return np.concatenate([(p.grad.numpy() if p.grad is not None else np.zeros(p.shape)).astype(np.float64).ravel()
                               for p in parameters_of(model)])
    finally:
        set_flat_weights(model, original)


def _kink_of(node):
    """'relu' or 'join' for the ops whose ReLU makes the loss piecewise smooth, else None."""
    name = node.op_name()
    if name == "relu":
        return "relu"
    return "join" if name == "residual_add" and node.relu else None


@contextlib.contextmanager
def frozen_relus(model, loss_fn):
    """Record which ReLU inputs are positive in ``loss_fn(model)`` at the current weights; inside the context
    every ReLU (relu, and the residual join's) uses those masks forward (relu(x) = x where the mask is on, else
    0) and backward (the gradient passes where the mask is on), whatever its input now is. Each pass of
    ``loss_fn`` must run the same ops in the same order."""
    masks = []

    def record(node, phase, inputs, run):
        result = run()
        if phase == "forward" and _kink_of(node):
            masks.append(result > 0)
        return result
    with op_hooks.registered(record, every_op=True), no_grad():
        loss_fn(model)
    seen, pending = [0], {}

    def replay(node, phase, inputs, run):
        if phase == "backward":
            if id(node) not in pending:
                return run()
            kind, mask = pending.pop(id(node))
            xp = backend.get_array_module(inputs[0])
            gradient = xp.where(mask, inputs[0], 0).astype(inputs[0].dtype)
            if kind == "relu":
                return gradient
            need_out, need_shortcut = node.needs_input_grad
            return gradient if need_out else None, gradient if need_shortcut else None
        result = run()  # the op runs as usual (and saves what it saves); only its output is replaced
        kind = _kink_of(node)
        if kind is None:
            return result
        mask = masks[seen[0] % len(masks)]
        seen[0] += 1
        x = inputs[0] if kind == "relu" else inputs[0] + inputs[1]
        if x.shape != mask.shape:
            raise ShapeError(f"frozen_relus: a ReLU input has shape {x.shape}, the recorded one {mask.shape}; "
                             f"the loss must run the same ops on every call")
        pending[id(node)] = kind, mask
        return backend.get_array_module(x).where(mask, x, 0).astype(x.dtype)
    with op_hooks.registered(replay, every_op=True):
        yield masks


def hessian_vector_product(model, loss_fn, vector, eps=DEFAULT_EPS):
    """H v by central differences of gradients at the model's weights, a step of ``eps`` along v / ||v||."""
    weights = flat_weights(model)
    if vector.shape != weights.shape:
        raise ArgumentError(f"hessian_vector_product: the vector has {vector.size} entries, the model "
                            f"{weights.size} parameters")
    length = np.linalg.norm(vector)
    if length == 0:
        return np.zeros_like(weights)
    step = eps * vector / length
    with frozen_relus(model, loss_fn):
        above = gradient(model, loss_fn, weights + step)
        below = gradient(model, loss_fn, weights - step)
    return length * (above - below) / (2 * eps)


def top_eigenvalues(model, loss_fn, k=1, iterations=50, rng=None, eps=DEFAULT_EPS, tolerance=1e-6):
    """The k Hessian eigenvalues of largest magnitude (and their unit eigenvectors), by power iteration on H
    with the eigenvectors already found projected out."""
    rng = np.random.default_rng(0) if rng is None else rng
    size = flat_weights(model).size
    values, vectors = [], []
    for _ in range(k):
        v = rng.standard_normal(size)
        value = 0.0
        for _ in range(iterations):
            for u in vectors:  # deflation: search the orthogonal complement of what was found
                v -= (u @ v) * u
            v /= np.linalg.norm(v)
            hv = hessian_vector_product(model, loss_fn, v, eps)
            for u in vectors:
                hv -= (u @ hv) * u
            new_value = float(v @ hv)  # the Rayleigh quotient
            converged = abs(new_value - value) <= tolerance * max(abs(new_value), 1e-12)
            value, v = new_value, hv
            if converged:
                break
        values.append(value)
        vectors.append(v / np.linalg.norm(v))
    return values, vectors


def lanczos_eigenvalues(model, loss_fn, steps=20, rng=None, eps=DEFAULT_EPS):
    """The Ritz values of ``steps`` Lanczos iterations, largest first: the first approximates the largest
    Hessian eigenvalue, the last the smallest ([nan] when a product is not finite). The basis is re-orthogonalised against every earlier vector, so
    it stays orthogonal in floating point (without that, copies of converged eigenvalues appear)."""
    rng = np.random.default_rng(0) if rng is None else rng
    size = flat_weights(model).size
    v = rng.standard_normal(size)
    v /= np.linalg.norm(v)
    basis, diagonal, off_diagonal = [], [], []
    for _ in range(min(steps, size)):
        basis.append(v)
        w = hessian_vector_product(model, loss_fn, v, eps)
        if not np.all(np.isfinite(w)):
            return [float("nan")]  # the loss overflows near these weights: no curvature to report
        diagonal.append(float(v @ w))
        for u in basis:  # w - alpha v - beta v_previous, and any drift toward earlier vectors
            w -= (u @ w) * u
        beta = float(np.linalg.norm(w))
        if len(basis) == min(steps, size) or beta <= 1e-12 * max(map(abs, diagonal)):
            break  # done, or the Krylov space is exhausted: its Ritz values are exact eigenvalues
        off_diagonal.append(beta)
        v = w / beta
    tridiagonal = np.diag(diagonal) + np.diag(off_diagonal, 1) + np.diag(off_diagonal, -1)
    return np.linalg.eigvalsh(tridiagonal)[::-1].tolist()


def hessian_trace(model, loss_fn, samples=50, rng=None, eps=DEFAULT_EPS):
    """Hutchinson's estimate of tr H, and its standard error: mean and sd/sqrt(n) of v^T H v over +-1 vectors."""
    rng = np.random.default_rng(0) if rng is None else rng
    size = flat_weights(model).size
    draws = []
    for _ in range(samples):
        v = rng.choice([-1.0, 1.0], size)
        draws.append(float(v @ hessian_vector_product(model, loss_fn, v, eps)))
    draws = np.asarray(draws)
    return float(draws.mean()), float(draws.std(ddof=1) / np.sqrt(samples)) if samples > 1 else float("nan")
