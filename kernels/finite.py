"""count_non_finite(arrays) -> int64 array of len(arrays): how many values of each are NaN or infinite.

A training step asks this of the loss, every parameter and every running statistic (minires/training):
per array with the array module (the reference, a reduction each), or in one launch over a table of
addresses on the GPU (kernels/cuda/finite.cu), so that the step reads one small array back from the device
instead of waiting on it once per parameter. The arrays share one floating dtype.
"""
from minires.backend import get_array_module



def count_non_finite_reference(arrays):
    xp = get_array_module(arrays[0])
    return xp.stack([(~xp.isfinite(a)).sum() for a in arrays]).astype(xp.int64)
