"""Launch code for finite.cu, with the signature of kernels/finite.py's reference (its cuda slot)."""
from minires.backend import get_array_module

from ..finite import count_non_finite_reference
from .modules import launch_per_channel, table


def count_non_finite(arrays):
    xp = get_array_module(arrays[0])
    dtype = arrays[0].dtype
    if any(a.dtype != dtype for a in arrays):  # one kernel reads one dtype: mixed lists take the reference
        return count_non_finite_reference(arrays)
    counts = xp.empty(len(arrays), dtype=xp.int64)
    rows = [(xp.ascontiguousarray(a), a.size) for a in arrays]
    launch_per_channel("finite", "count_non_finite", dtype, len(rows), (table(rows, arrays[0]), len(rows), counts))
    return counts
