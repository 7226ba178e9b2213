"""The one default source of randomness: a ``numpy.random.Generator`` reseeded by ``mr.manual_seed``.

Code that draws random numbers takes a ``seed=`` or a Generator, or falls back to ``default_generator()``;
nothing calls the global ``np.random`` functions, so a run is reproduced by its seed alone.
"""
import numpy as np

from .errors import ArgumentError

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the default generator (like ``torch.manual_seed``) and return it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(f"manual_seed: expected a non-negative integer seed, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator():
    return _generator


def as_generator(seed=None):
    """A Generator from an int seed, a Generator (returned as is), or None (the default generator)."""
    if seed is None:
        return _generator
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
