"""PyTorch's dtype names (``minires.float32``, ``minires.long``, ...) as the NumPy dtypes minires uses, so
``x.dtype == minires.float32``, ``x.to(minires.long)`` and ``minires.zeros(3, dtype=minires.int64)`` read as
in torch. minires has no complex or reduced-precision training dtypes: float16 is there for storage only."""
import builtins

import numpy as np

float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
float16 = half = np.dtype(np.float16)
int64 = long = np.dtype(np.int64)
int32 = int = np.dtype(np.int32)
int16 = short = np.dtype(np.int16)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool = np.dtype(np.bool_)

NAMES = ("float32", "float", "float64", "double", "float16", "half", "int64", "long", "int32", "int", "int16",
         "short", "int8", "uint8", "bool")


def is_floating_point(dtype):
    return np.dtype(dtype).kind == "f"


def to_arguments(owner, args, kwargs):
    """(device, dtype, memory_format) from torch's ways of calling ``.to``: to(device), to(dtype),
    to(device, dtype), to(tensor) (its device and dtype), with device=, dtype=, memory_format=, non_blocking=,
    copy= as keywords (the last two accepted and ignored)."""
    from .backend import DEVICES, device as device_type
    from .errors import ArgumentTypeError
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    memory_format = kwargs.pop("memory_format", None)
    kwargs.pop("non_blocking", None), kwargs.pop("copy", None)
    if kwargs:
        raise ArgumentTypeError(f"{owner}.to: unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if hasattr(arg, "array") and hasattr(arg, "dtype"):  # another tensor: its device and dtype
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, device_type) or (isinstance(arg, str) and arg.split(":")[0].lower() in DEVICES):
            device = arg
        elif isinstance(arg, builtins.bool):  # torch's positional non_blocking / copy
            continue
        else:
            try:
                dtype = np.dtype(arg)
            except TypeError:
                raise ArgumentTypeError(f"{owner}.to: {arg!r} is neither a device nor a dtype") from None
    return device, dtype, memory_format
