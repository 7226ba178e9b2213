"""minires.kernels: the hand-written kernels and the registry that picks one implementation per op.

Each kernel family (im2col, batch-norm, pooling, residual join) lives in its own file with a readable
NumPy reference and a numba CPU version of the same signature (``x_reference``; ``x_loops``, compiled as
``x_numba``). Each registry entry also has an empty slot for a CuPy GPU version; while it is empty, CuPy
arrays run the NumPy reference, which is written against its input's array module (kernels/cuda fills
most of the slots with CUDA C). conv_columns.py is not a
kernel: it holds a convolution's column buffers (workspace, keep or recompute) for functional/conv.py.
A Function in minires/functional picks its kernel in one line:

    im2col = kernels.pick("im2col", xp)

CuPy arrays get the GPU kernel; NumPy arrays get the numba kernel when numba imports, else the reference.
numba kernels run on numba's workqueue threading layer unless NUMBA_THREADING_LAYER says otherwise (see jit.py).
The environment variable MINIRES_KERNELS=reference|numba forces one CPU flavour (for teaching, debugging and
tests); ``with kernels.using(flavour):`` does the same for a block of code. This package never imports the
Tensor or Function classes.
"""
from .registry import (FLAVOURS, cpu_flavour, cuda_in_force, implementation, numba_available, pick, register,  # noqa: F401
                       registered, using)
from . import (batchnorm, batchnorm_channels_last, batchnorm_relu, batchnorm_relu_channels_last,  # noqa: F401,E402
               finite, im2col, pool, residual, sgd)  # (each registers its kernels)
