"""Dropout (Srivastava et al. 2014) as PyTorch defines it: in training, each element is zeroed with
probability p and the survivors are scaled by 1 / (1 - p), so the expected output equals the input; in
evaluation it is the identity. The mask comes from a numpy Generator (``generator=``, else the default one
that ``mr.manual_seed`` seeds), so a run is reproduced by its seed."""
import numbers

from .. import backend
from ..errors import ArgumentError
from ..function import Function
from ..rng import as_generator


class Dropout(Function):
    name = "dropout"

    def forward(self, x, keep):
        self.save_for_backward(keep)
        return x * keep  # keep = mask / (1 - p)

    def backward(self, g):
        (keep,) = self.saved_tensors
        return g * keep  # d(x keep)/dx = keep


def dropout(input, p=0.5, training=True, inplace=False, *, generator=None):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) when ``training``
    (``inplace=True`` writes the result into ``input``, as torch)."""
    if inplace:
        from .. import inplace as inplace_ops
        return inplace_ops.run(input, "dropout_", lambda t: dropout(t, p, training, generator=generator))
    x = input
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ArgumentError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0:
        return x
    rng = as_generator(generator)
    if p == 1:
        keep = backend.get_array_module(x.array).zeros(x.shape, dtype=x.dtype)
    else:
        mask = rng.random(x.shape) >= p  # drawn on the host: the same mask on every device for one seed
        keep = backend.to_device((mask / (1 - p)).astype(x.dtype), x.device)
    return Dropout.apply(x, keep=keep)
