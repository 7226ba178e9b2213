"""minires.kernels: the hand-written kernels and the registry that picks one implementation per op.

Each kernel family (im2col, batch-norm, pooling, residual join) lives in its own file with a readable
NumPy reference and a numba CPU version of the same signature. Each registry entry also has a slot for the
CuPy GPU version (CUDA C in kernels/cuda/, written and verified on a GPU by the GPU-backend work); until a
slot is filled, CuPy arrays run the NumPy reference, which is written against its input's array module.
A Function in minires/functional picks its kernel in one line:

    im2col = kernels.pick("im2col", xp)

CuPy arrays get the GPU kernel; NumPy arrays get the numba kernel when numba imports, else the reference.
numba kernels run on numba's workqueue threading layer unless NUMBA_THREADING_LAYER says otherwise (see jit.py).
The environment variable MINIRES_KERNELS=reference|numba forces one CPU flavour (for teaching, debugging and
tests); ``with kernels.using(flavour):`` does the same for a block of code. This package never imports the
Tensor or Function classes.
"""
from .registry import (FLAVOURS, cpu_flavour, implementation, numba_available, pick, register,  # noqa: F401
                       registered, using)
from . import batchnorm, im2col, pool, residual  # noqa: F401,E402  (each registers its kernels)
