"""One compiled module per .cu file and device, built on first use: by default a cupy.RawModule through
minires.backend (the only file that imports cupy); inside ``built_by(builder)`` by ``builder(path)``, which
the tests use to put the CPU harness in the GPU's place. Also the launch geometry: BLOCK threads per block
(a power of two) and at most ``max_blocks`` blocks, the grid-stride loops covering the rest.
"""
import contextlib
import importlib.resources

import numpy as np

from minires import backend
from minires.errors import DTypeError

BLOCK = 256
_limits = {"block": BLOCK, "max_blocks": 65535}
_modules = {}  # (file name, device or builder) -> module
_builders = []  # innermost last


def source_path(name):
    """The path of kernels/cuda/<name>.cu, installed with the package."""
    return importlib.resources.files(__package__) / f"{name}.cu"


def module(name):
    """The module of <name>.cu for the current device (or the builder in force)."""
    if _builders:
        key, build = (name, id(_builders[-1])), _builders[-1]
    else:
        key, build = (name, backend.cuda_device()), lambda path: backend.cuda_module(path.read_text())
    if key not in _modules:
        _modules[key] = build(source_path(name))
    return _modules[key]


@contextlib.contextmanager
def built_by(builder, block=None, max_blocks=None):
    """Inside the block, modules come from ``builder(path of the .cu file)``; ``block`` and ``max_blocks``
    change the launch geometry (a grid smaller than the data runs every grid-stride loop)."""
    saved = dict(_limits)
    _builders.append(builder)
    _limits.update({k: v for k, v in (("block", block), ("max_blocks", max_blocks)) if v is not None})
    try:
        yield
    finally:
        _builders.pop()
        _limits.update(saved)
        for key in [k for k in _modules if k[1] == id(builder)]:
            del _modules[key]


def launch(family, kernel, dtype, size, args):
    """Run kernel <kernel>_<f32|f64> of <family>.cu over ``size`` output elements (grid-stride loops)."""
    block = _limits["block"]
    _function(family, kernel, dtype)((max(1, min(-(-size // block), _limits["max_blocks"])),), (block,), args)


def launch_per_channel(family, kernel, dtype, channels, args):
    """Run a kernel that gives each channel to one block (blocks stride over the channels; the block size
    is a power of two for the kernel's tree reduction)."""
    _function(family, kernel, dtype)((max(1, min(channels, _limits["max_blocks"])),), (_limits["block"],), args)


def launch_over_table(family, kernel, dtype, longest, rows, args):
    """Run a kernel that takes a table of many arrays: the grid's y blocks stride over the ``rows``, its x
    blocks over a row's elements (``longest`` of them at most)."""
    block, most = _limits["block"], _limits["max_blocks"]
    grid = (max(1, min(-(-longest // block), most)), max(1, min(rows, most)))
    _function(family, kernel, dtype)(grid, (block,), args)


def table(rows, like):
    """The int64 table of ``rows`` (tuples of ints and arrays, an array standing for its address) on the
    device of ``like``: one small host-to-device copy, no wait for the device."""
    host = np.array([[backend.data_pointer(v) if hasattr(v, "dtype") else int(v) for v in row] for row in rows],
                    dtype=np.int64).reshape(len(rows), -1)
    return backend.get_array_module(like).asarray(host)


def _function(family, kernel, dtype):
    suffix = {"float32": "f32", "float64": "f64"}.get(str(dtype))
    if suffix is None:
        raise DTypeError(f"CUDA kernel {kernel}: float32 or float64 arrays only, got {dtype}")
    return module(family).get_function(f"{kernel}_{suffix}")
