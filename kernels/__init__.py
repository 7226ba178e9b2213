"""minires.kernels: the hand-written kernels and the registry that picks one implementation per op.

Each kernel family (im2col, batch-norm, pooling, residual join, ...) lives in its own file with a readable
NumPy reference and a numba CPU version of the same signature; the CUDA C of the CuPy version sits in
kernels/cuda/. A Function in minires/functional picks its kernel in one line:

    im2col = kernels.pick("im2col", xp)

CuPy arrays get the GPU kernel; NumPy arrays get the numba kernel when numba imports, else the reference.
The environment variable MINIRES_KERNELS=reference|numba forces one CPU flavour (for teaching, debugging and
tests). This package never imports the Tensor or Function classes.
"""
from .registry import FLAVOURS, cpu_flavour, numba_available, pick, register, registered  # noqa: F401
from . import batchnorm, im2col, pool, residual  # noqa: F401,E402  (each registers its kernels)
