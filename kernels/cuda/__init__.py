"""The CUDA C kernels, one .cu file per kernel family beside its NumPy and numba twins (residual.cu next to
kernels/residual.py), each with its launch code in the Python module of the same name (residual.py). The
launch code is written against a *module* object with cupy.RawModule's call shape,
``module.get_function(name)(grid, block, args)``, and the array module of its inputs, so it runs unchanged on
a GPU (modules.py builds a cupy.RawModule through minires.backend) and, in the tests, on the CPU through
tests/cuda_harness.py, which compiles the same .cu files with g++.
"""
