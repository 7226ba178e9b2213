"""minires.analysis.sharpness: Hessian-vector products by central differences of gradients, against torch's
exact Hessian (double backward) of the same small float64 network; eigenvalues and trace from them."""
import numpy as np
import pytest

import minires as mr
from minires import nn
from minires.analysis import sharpness

torch = pytest.importorskip("torch")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.out(mr.F.tanh(self.hidden(x)))


def _tiny(seed=0):
    """Linear(3, 4) -> tanh -> Linear(4, 2), float64, 26 parameters, and a fixed batch of 5."""
    rng = np.random.default_rng(seed)
    model = Tiny().double()
    for p in model.parameters():
        p.array[...] = rng.standard_normal(p.shape)
    images, labels = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    return model, lambda m: mr.F.cross_entropy(m(mr.tensor(images)), labels), images, labels


def _torch_hessian(model, images, labels):
    shapes = [p.shape for p in model.parameters()]
    sizes = [int(np.prod(s)) for s in shapes]

    def loss(flat):
        w1, b1, w2, b2 = [chunk.reshape(s) for chunk, s in zip(torch.split(flat, sizes), shapes)]
        hidden = torch.tanh(torch.tensor(images) @ w1.T + b1)
        return torch.nn.functional.cross_entropy(hidden @ w2.T + b2, torch.tensor(labels))
    return torch.autograd.functional.hessian(loss, torch.tensor(sharpness.flat_weights(model))).numpy()


def test_hessian_vector_products_match_the_exact_hessian():
    model, loss_fn, images, labels = _tiny()
    exact = _torch_hessian(model, images, labels)
    rng = np.random.default_rng(1)
    errors = {}
    for eps in (1e-2, 1e-3, 1e-4):
        v = rng.standard_normal(exact.shape[0])
        errors[eps] = np.abs(sharpness.hessian_vector_product(model, loss_fn, v, eps) - exact @ v).max() \
            / np.abs(exact @ v).max()
    assert errors[1e-4] < 1e-7  # central differences: O(eps^2), rounding ~1e-16 / eps
    assert errors[1e-2] > errors[1e-3] > errors[1e-4]


def test_the_largest_eigenvalues_and_the_trace_match_the_exact_hessian():
    model, loss_fn, images, labels = _tiny()
    exact = _torch_hessian(model, images, labels)
    eigen = np.linalg.eigvalsh(exact)
    by_magnitude = eigen[np.argsort(-np.abs(eigen))]
    values, vectors = sharpness.top_eigenvalues(model, loss_fn, k=2, iterations=500, rng=np.random.default_rng(0),
                                                tolerance=1e-12)
    np.testing.assert_allclose(values, by_magnitude[:2], rtol=1e-5)
    assert abs(vectors[0] @ vectors[1]) < 1e-6
    trace, error = sharpness.hessian_trace(model, loss_fn, samples=400, rng=np.random.default_rng(0))
    # Hutchinson with +-1 vectors: variance 2 * sum of the squared off-diagonal entries, per sample
    spread = np.sqrt(2 * ((exact ** 2).sum() - (np.diag(exact) ** 2).sum()) / 400)
    assert abs(trace - np.trace(exact)) < 5 * spread and error == pytest.approx(spread, rel=0.3)


def test_the_weights_are_left_as_they_were_and_a_wrong_vector_is_named():
    model, loss_fn, *_ = _tiny()
    before = sharpness.flat_weights(model)
    sharpness.hessian_vector_product(model, loss_fn, np.ones(before.size))
    np.testing.assert_array_equal(sharpness.flat_weights(model), before)
    with pytest.raises(ValueError, match="the vector has 3 entries, the model 26 parameters"):
        sharpness.hessian_vector_product(model, loss_fn, np.ones(3))
