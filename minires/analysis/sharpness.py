"""Sharpness of a training loss: Hessian-vector products, the largest Hessian eigenvalues and the Hessian
trace, for any model and loss, in float64.

minires has no double backward, so a Hessian-vector product is a central difference of gradients:

    H v  ~  (g(w + eps v) - g(w - eps v)) / (2 eps)         (g = dL/dw, the model's flattened parameters w)

whose error is O(eps^2 ||v||^2) times the loss's third derivative (tests/test_sharpness.py measures it
against torch's exact Hessian of a small network). From it:
- ``top_eigenvalues``: power iteration with deflation (the eigenvalues of largest magnitude, in order);
- ``hessian_trace``: Hutchinson's estimator, the mean of v^T H v over random +-1 vectors v (E[v^T H v] = tr H).
The model should be float64 (``model.double()``) and in the mode the loss is meant in (batch-norm in
evaluation mode keeps the loss a function of the weights alone).
"""
import numpy as np

from ..errors import ArgumentError

DEFAULT_EPS = 1e-4


def parameters_of(model):
    """The parameters that require grad, in order."""
    return [p for p in model.parameters() if p.requires_grad]


def flat_weights(model):
    return np.concatenate([p.numpy().astype(np.float64).ravel() for p in parameters_of(model)])


def set_flat_weights(model, vector):
    offset = 0
    for p in parameters_of(model):
        size = p.array.size
        p.array[...] = vector[offset:offset + size].reshape(p.array.shape)
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


def hessian_vector_product(model, loss_fn, vector, eps=DEFAULT_EPS):
    """H v by central differences of gradients at the model's weights."""
    weights = flat_weights(model)
    if vector.shape != weights.shape:
        raise ArgumentError(f"hessian_vector_product: the vector has {vector.size} entries, the model "
                            f"{weights.size} parameters")
    above = gradient(model, loss_fn, weights + eps * vector)
    below = gradient(model, loss_fn, weights - eps * vector)
    return (above - below) / (2 * eps)


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
