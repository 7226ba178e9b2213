"""numba, when it imports: ``parallel_jit(fn)`` compiles a kernel for the CPU's cores, or returns None so that
the registry falls back to the NumPy reference. ``prange`` is numba's parallel range (plain range without it).

Kernels are written as plain Python functions and compiled on their own line,
``_im2col_jit = parallel_jit(_im2col_loops)``, so that NUMBA_DISABLE_JIT=1 runs the very same code as Python.
"""
try:
    from numba import njit, prange
except ImportError:  # numba is a dependency, but a broken install must not break the reference kernels
    njit, prange = None, range


def parallel_jit(fn):
    return None if njit is None else njit(parallel=True, cache=True, fastmath=False)(fn)



def numba_version(jitted, wrapper):
    """The numba flavour to register: the wrapper around a compiled kernel, or None without numba."""
    return wrapper if jitted is not None else None


def serial_jit(fn):
    """For small helpers that compiled kernels call (they must be compiled too)."""
    return None if njit is None else njit(cache=True)(fn)
