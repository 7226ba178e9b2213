"""minires.analysis.hessian: Hessian-vector products by central differences of gradients, against torch's
exact Hessian (double backward) of the same small float64 network; eigenvalues and trace from them."""
import numpy as np
import pytest

import minires as mr
from minires import nn
from minires.analysis import hessian

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
    return torch.autograd.functional.hessian(loss, torch.tensor(hessian.flat_weights(model))).numpy()


def test_hessian_vector_products_match_the_exact_hessian():
    model, loss_fn, images, labels = _tiny()
    exact = _torch_hessian(model, images, labels)
    rng = np.random.default_rng(1)
    errors = {}
    for eps in (1e-2, 1e-3, 1e-4):
        v = rng.standard_normal(exact.shape[0])
        errors[eps] = np.abs(hessian.hessian_vector_product(model, loss_fn, v, eps) - exact @ v).max() \
            / np.abs(exact @ v).max()
    assert errors[1e-4] < 1e-7  # central differences: O(eps^2), rounding ~1e-16 / eps
    assert errors[1e-2] > errors[1e-3] > errors[1e-4]


def test_the_largest_eigenvalues_and_the_trace_match_the_exact_hessian():
    model, loss_fn, images, labels = _tiny()
    exact = _torch_hessian(model, images, labels)
    eigen = np.linalg.eigvalsh(exact)
    by_magnitude = eigen[np.argsort(-np.abs(eigen))]
    values, vectors = hessian.top_eigenvalues(model, loss_fn, k=2, iterations=500, rng=np.random.default_rng(0),
                                                tolerance=1e-12)
    np.testing.assert_allclose(values, by_magnitude[:2], rtol=1e-5)
    assert abs(vectors[0] @ vectors[1]) < 1e-6
    trace, error = hessian.hessian_trace(model, loss_fn, samples=400, rng=np.random.default_rng(0))
    # Hutchinson with +-1 vectors: variance 2 * sum of the squared off-diagonal entries, per sample
    spread = np.sqrt(2 * ((exact ** 2).sum() - (np.diag(exact) ** 2).sum()) / 400)
    assert abs(trace - np.trace(exact)) < 5 * spread and error == pytest.approx(spread, rel=0.3)


def test_the_weights_are_left_as_they_were_and_a_wrong_vector_is_named():
    model, loss_fn, *_ = _tiny()
    before = hessian.flat_weights(model)
    hessian.hessian_vector_product(model, loss_fn, np.ones(before.size))
    np.testing.assert_array_equal(hessian.flat_weights(model), before)
    with pytest.raises(ValueError, match="the vector has 3 entries, the model 26 parameters"):
        hessian.hessian_vector_product(model, loss_fn, np.ones(3))


def test_lanczos_finds_the_extreme_eigenvalues_of_the_exact_hessian():
    model, loss_fn, images, labels = _tiny()
    eigen = np.sort(np.linalg.eigvalsh(_torch_hessian(model, images, labels)))[::-1]
    every = hessian.lanczos_eigenvalues(model, loss_fn, steps=100, rng=np.random.default_rng(2))
    # steps are capped at the 26 parameters; every Ritz value is then an eigenvalue, the extremes included
    assert len(every) <= 26 and every[0] == pytest.approx(eigen[0], abs=1e-6)
    assert every[-1] == pytest.approx(eigen[-1], abs=1e-6)
    assert all(np.abs(eigen - value).min() < 1e-6 for value in every)
    few = hessian.lanczos_eigenvalues(model, loss_fn, steps=12, rng=np.random.default_rng(2))
    assert len(few) == 12 and few == sorted(few, reverse=True)
    assert few[0] == pytest.approx(eigen[0], rel=1e-4) and few[-1] == pytest.approx(eigen[-1], rel=1e-3)


def _torch_twin_loss(name, model, images, labels):
    """torch's loss of the same network as a function of the flattened weights (for its double backward)."""
    from minires.verify import torch_reference

    twin = torch_reference.build(name, num_classes=10, in_channels=1).double().eval()
    twin.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in model.state_dict().items()})
    names = [n for n, _ in model.named_parameters()]
    shapes = [tuple(p.shape) for _, p in model.named_parameters()]

    def loss(flat):
        chunks = torch.split(flat, [int(np.prod(s)) for s in shapes])
        logits = torch.func.functional_call(twin, {n: c.reshape(s) for n, c, s in zip(names, chunks, shapes)},
                                            (torch.tensor(images),))
        return torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    return loss


def _relu_network(name):
    """A float64 CIFAR net for 8x8 one-channel images, batch-norm in evaluation mode with statistics estimated
    on its batch of 4, its loss, and torch's exact H v of the same loss."""
    from minires import models
    from minires.analysis.sharpness import estimate_running_statistics

    rng = np.random.default_rng(0)
    images, labels = rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 10, 4)
    model = models.get(name, num_classes=10, in_channels=1, seed=0)
    estimate_running_statistics(model, images.astype(np.float32))
    model = model.double().eval()
    torch_loss = _torch_twin_loss(name, model, images, labels)
    weights = torch.tensor(hessian.flat_weights(model))

    def exact(model_, loss_fn_, v, eps=None):
        return torch.autograd.functional.hvp(torch_loss, weights, torch.tensor(v))[1].numpy()
    return model, (lambda m: mr.F.cross_entropy(m(mr.tensor(images)), labels)), exact


@pytest.mark.parametrize("name", ["resnet20", "plain20"])
def test_products_on_relu_networks_match_torch_double_backward_with_the_relus_frozen(name):
    """With every ReLU's pattern frozen at w the products agree with torch's exact ones; the same central
    difference without freezing is far off, because a step of 1e-3 flips some ReLUs (the gradient jumps)."""
    model, loss_fn, exact = _relu_network(name)
    rng = np.random.default_rng(1)
    weights = hessian.flat_weights(model)
    for _ in range(2):
        v = rng.standard_normal(weights.size)
        truth = exact(model, loss_fn, v)
        error = np.linalg.norm(hessian.hessian_vector_product(model, loss_fn, v) - truth) / np.linalg.norm(truth)
        assert error < 1e-7
    u = v / np.linalg.norm(v)
    unfrozen = np.linalg.norm(v) * (hessian.gradient(model, loss_fn, weights + 1e-3 * u)
                                    - hessian.gradient(model, loss_fn, weights - 1e-3 * u)) / 2e-3
    assert np.linalg.norm(unfrozen - truth) / np.linalg.norm(truth) > 1e-2
    np.testing.assert_array_equal(hessian.flat_weights(model), weights)


def test_lanczos_on_a_relu_network_finds_what_exact_products_find(monkeypatch):
    """The same Lanczos run (same start vector) with our products and with torch's exact ones: the extreme
    Ritz values agree, so the sharpness numbers are the network's, not the finite differences'."""
    model, loss_fn, exact = _relu_network("plain20")
    ours = hessian.lanczos_eigenvalues(model, loss_fn, steps=6, rng=np.random.default_rng(3))
    monkeypatch.setattr(hessian, "hessian_vector_product", exact)
    theirs = hessian.lanczos_eigenvalues(model, loss_fn, steps=6, rng=np.random.default_rng(3))
    assert ours[0] == pytest.approx(theirs[0], rel=1e-6) and ours[-1] == pytest.approx(theirs[-1], rel=1e-6)
    assert ours[0] > 0 > ours[-1]


def test_frozen_relus_hold_the_pattern_and_name_a_changed_loss():
    model, loss_fn, _ = _relu_network("resnet20")
    weights = hessian.flat_weights(model)
    at_w = loss_fn(model).item()
    far = weights + 0.5 * np.random.default_rng(4).standard_normal(weights.size)
    hessian.set_flat_weights(model, far)
    unfrozen_far = loss_fn(model).item()
    hessian.set_flat_weights(model, weights)
    with hessian.frozen_relus(model, loss_fn) as masks:
        assert len(masks) == 19  # the stem's ReLU, then per block its ReLU and its join's
        assert loss_fn(model).item() == at_w  # at w the frozen pattern is w's own
        hessian.set_flat_weights(model, far)
        assert abs(loss_fn(model).item() - unfrozen_far) > 1e-3 * abs(unfrozen_far)  # far away it is not
        with pytest.raises(ValueError, match=r"^frozen_relus: a ReLU input has shape \(3,\), the recorded one "
                                             r"\(4, 16, 8, 8\); the loss must run the same ops on every call$"):
            mr.F.relu(mr.tensor(np.ones(3)))
    hessian.set_flat_weights(model, weights)
    assert loss_fn(model).item() == at_w


def test_the_trace_is_the_mean_of_the_probes_and_its_error_their_standard_error():
    model, loss_fn, *_ = _tiny()
    rng = np.random.default_rng(5)
    probes = [rng.choice([-1.0, 1.0], 26) for _ in range(3)]
    draws = [v @ hessian.hessian_vector_product(model, loss_fn, v) for v in probes]
    trace, error = hessian.hessian_trace(model, loss_fn, samples=3, rng=np.random.default_rng(5))
    assert trace == pytest.approx(np.mean(draws), rel=1e-12)
    assert error == pytest.approx(np.std(draws, ddof=1) / np.sqrt(3), rel=1e-12)
    one, no_error = hessian.hessian_trace(model, loss_fn, samples=1, rng=np.random.default_rng(5))
    assert one == pytest.approx(draws[0], rel=1e-12) and np.isnan(no_error)

