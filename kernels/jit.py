"""numba, when it imports: ``parallel_jit(fn)`` compiles a kernel for the CPU's cores, or returns None so that
the registry falls back to the NumPy reference. ``prange`` is numba's parallel range (plain range without it).

Each kernel is written once as a plain Python function of loops that allocates and returns its outputs, and
compiled on its own line, ``im2col_numba = parallel_jit(im2col_loops)``: two names per kernel, and
NUMBA_DISABLE_JIT=1 (or a machine without numba, where the registry falls back to the reference) runs the
very same loops as Python.
"""
import os

try:
    import numba
    from numba import njit, prange
except ImportError:  # numba is a dependency, but a broken install must not break the reference kernels
    numba, njit, prange = None, None, range

if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    # numba's OpenMP layer keeps its workers spinning after a kernel, and OpenBLAS does the same after a
    # GEMM: on a 2-core machine the two thread pools then fight over the cores around every convolution.
    # The workqueue layer's workers sleep. Measured (conv2d forward + backward, 128x16x32x32 3x3 and
    # 128x64x8x8 3x3, 2 cores): omp 112-143 ms and 60-74 ms, workqueue 84-89 ms and 38-40 ms.
    numba.config.THREADING_LAYER = "workqueue"


def parallel_jit(fn, reassociate=False):
    """Compile for all cores. ``reassociate`` lets a kernel's sums be re-ordered into SIMD lanes (a serial
    float64 add chain runs at one add per 4 cycles); results then differ from the reference in the last bits."""
    if njit is None:
        return None
    return njit(parallel=True, cache=True, fastmath={"reassoc"} if reassociate else False)(fn)


def serial_jit(fn):
    """For small helpers that compiled kernels call (they must be compiled too)."""
    return None if njit is None else njit(cache=True)(fn)
