"""One thread pool per training step. numba's OpenMP workers run the kernels and spin briefly after each one;
a BLAS library with its own pool (OpenBLAS under NumPy) would then fight them for the cores around every
matrix product — under contention minires ran 2-10x slower per layer. Inside ``one_pool()`` BLAS runs on one
thread, so numba's pool alone uses the cores; outside it (and for any other library) nothing changes.
Measured in kernels/jit.py's comment and benchmarks/RESULTS.md.

threadpoolctl (installed with scikit-learn, which the bundled data needs) does the limiting; without it,
``one_pool()`` does nothing.
"""
import contextlib

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # an optional helper: the step still runs, only the two pools may contend
    ThreadpoolController = None

_controller = None


@contextlib.contextmanager
def one_pool():
    """BLAS limited to one thread inside the block."""
    global _controller
    if ThreadpoolController is None:
        yield
        return
    if _controller is None:
        _controller = ThreadpoolController()  # inspects the loaded libraries once
    with _controller.limit(limits=1, user_api="blas"):
        yield
