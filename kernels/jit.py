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
    # One thread pool per step, numba's OpenMP one: the workqueue layer does not spread the direct
    # convolutions over the cores (ResNet-20 step at batch 128, 2 cores: 236 ms on workqueue, 172 ms on omp;
    # one 128x64x8x8 3x3 forward: 1.9 ms vs 1.3 ms). OpenMP's workers spin after a kernel, so OpenBLAS's pool
    # must not run beside it: minires.threads.one_pool() limits BLAS to one thread inside a training step
    # (NCHW step: 942 ms with both pools, 501 ms with BLAS limited, 691 ms on workqueue). Where OpenMP is not
    # available numba takes the next layer in this order.
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
    numba.config.THREADING_LAYER = "default"


# The bounds-checked build (NUMBA_BOUNDSCHECK=1, compiled): every index checked, kernels/simd.py's vector
# accesses too. numba's on-disk cache does not key on bounds checking, so that build compiles afresh, or it
# would load the unchecked machine code of an earlier run.
NUMBA = numba is not None  # the numba flavour exists
BOUNDS_CHECKED = numba is not None and bool(numba.config.BOUNDSCHECK) and not numba.config.DISABLE_JIT
CACHE_ON_DISK = not BOUNDS_CHECKED


def parallel_jit(fn, reassociate=False):
    """Compile for all cores. ``reassociate`` lets a kernel's sums be re-ordered into SIMD lanes (a serial
    float64 add chain runs at one add per 4 cycles); results then differ from the reference in the last bits."""
    if njit is None:
        return None
    return njit(parallel=True, cache=CACHE_ON_DISK, fastmath={"reassoc"} if reassociate else False)(fn)


def serial_jit(fn):
    """For small helpers that compiled kernels call (they must be compiled too)."""
    return None if njit is None else njit(cache=CACHE_ON_DISK)(fn)
