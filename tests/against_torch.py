"""The one helper that compares minires with PyTorch: identical float32 inputs, forward values, then gradients
under a random upstream gradient (never the degenerate gradient of sum(y))."""
import numpy as np
import torch

import minires as mr

# float32 tolerances for every minires-vs-torch comparison in the suite, stated once.
RTOL = 1e-4
ATOL = 1e-5


def assert_close(ours, theirs, what, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=rtol, atol=atol, err_msg=what)


def check_against_torch(minires_fn, torch_fn, inputs, seed=0, rtol=RTOL, atol=ATOL):
    """Run both functions on float32 copies of ``inputs`` and compare outputs and input gradients."""
    arrays = [None if a is None else np.asarray(a, dtype=np.float32) for a in inputs]  # None: absent input
    ours_in = [None if a is None else mr.tensor(a, requires_grad=True) for a in arrays]
    theirs_in = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    ours, theirs = minires_fn(*ours_in), torch_fn(*theirs_in)
    assert ours.dtype == np.float32, f"float32 in, {ours.dtype} out"
    assert tuple(ours.shape) == tuple(theirs.shape), f"shape {ours.shape} vs torch {tuple(theirs.shape)}"
    assert_close(ours.numpy(), theirs.detach().numpy(), "forward")
    upstream = np.random.default_rng(seed).standard_normal(ours.shape).astype(np.float32)
    ours.backward(upstream)
    theirs.backward(torch.from_numpy(upstream))
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if a is None:
            continue
        expected = np.zeros(a.shape, np.float32) if b.grad is None else b.grad.numpy()
        got = np.zeros(a.shape, np.float32) if a.grad is None else a.grad.numpy()
        assert_close(got, expected, f"gradient of input {i}", rtol=rtol, atol=atol)
