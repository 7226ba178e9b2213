"""``minires.cuda``: what PyTorch scripts ask ``torch.cuda`` (is there a GPU, how many, wait for it).
Every answer comes from backend.py, the one module that talks to CuPy."""
from . import backend


def is_available():
    return backend.cuda_available()


def device_count():
    return backend.cuda_device_count()


def synchronize(device=None):
    """Wait for the GPU's queued work (nothing to wait for without one)."""
    backend.synchronize()


def current_device():
    return 0


def manual_seed(seed):
    """Accepted for torch scripts; minires draws every random number on the host from the generator that
    ``minires.manual_seed`` seeds, so there is no separate GPU generator to seed."""


manual_seed_all = manual_seed


def empty_cache():
    """Hand CuPy's cached GPU blocks back to the driver (nothing to do without a GPU)."""
    backend.free_cached_memory()
