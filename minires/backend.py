"""Array backends: NumPy on the CPU, CuPy on a GPU.

This is the only module that imports CuPy, and it does so lazily: minires runs without CuPy installed, and a
CPU-only user never pays for its import. Everything else asks this module which array module (``xp``) an
array belongs to, or moves arrays between devices.
"""
import numpy as np

from .errors import DeviceError, DeviceUnavailableError

DEVICES = ("cpu", "cuda")

_cupy = None  # the cupy module once imported successfully
_cupy_problem = None  # why cupy is unusable, once we have tried


def _load_cupy():
    """Import CuPy and check that it sees a GPU; raise DeviceUnavailableError saying why not."""
    global _cupy, _cupy_problem
    if _cupy is not None:
        return _cupy
    if _cupy_problem is None:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                _cupy_problem = "CuPy is installed but sees no CUDA GPU"
            else:
                _cupy = cupy
                return cupy
        except ImportError:
            _cupy_problem = ("CuPy is not installed (pip install 'minires-nn[cuda12]' or "
                             "'minires-nn[cuda13]' to match your CUDA)")
        except Exception as exc:  # a CUDA driver/runtime error surfaces here
            _cupy_problem = f"CuPy could not reach a GPU: {exc}"
    raise DeviceUnavailableError(f"device 'cuda' is unavailable: {_cupy_problem}")


def cuda_available():
    """True when CuPy imports and sees at least one GPU."""
    try:
        _load_cupy()
        return True
    except DeviceUnavailableError:
        return False


NVRTC_OPTIONS = ("--std=c++17",)  # CuPy adds the device's architecture


def cuda_module(source):
    """A cupy.RawModule of CUDA C ``source`` for the current device: NVRTC compiles it when a kernel is
    first fetched (kernels/cuda/modules.py keeps one per file and device)."""
    return _load_cupy().RawModule(code=source, options=NVRTC_OPTIONS)


def nccl():
    """CuPy's NCCL bindings (cupy.cuda.nccl), for minires.distributed's collectives on GPU arrays."""
    _load_cupy()
    try:
        from cupy.cuda import nccl as bindings
    except ImportError as exc:
        raise DeviceUnavailableError(f"NCCL is unavailable to CuPy ({exc}); data parallelism on GPUs needs it")
    return bindings


def cuda_device():
    """The current CUDA device's number."""
    return _load_cupy().cuda.runtime.getDevice()


def _is_cupy_array(x):
    # Checked by module name so that a CPU-only run never imports cupy to answer "no".
    return type(x).__module__.startswith("cupy")


def get_array_module(x):
    """The array module of ``x``: ``cupy`` for CuPy arrays, ``numpy`` for anything else."""
    if _is_cupy_array(x):
        return _load_cupy()
    return np


def device_of(array):
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if _is_cupy_array(array) else "cpu"


def data_pointer(array):
    """The address of an array's first element (a device address for a CuPy array), for the pointer tables
    of kernels that take many arrays in one launch (kernels/cuda)."""
    return array.data.ptr if _is_cupy_array(array) else array.ctypes.data


class device:
    """PyTorch's ``torch.device``: ``minires.device("cuda" if minires.cuda.is_available() else "cpu")``.
    Anything that takes a device takes this, the string, or ``"cuda:0"``."""

    def __init__(self, type, index=None):
        name = str(type).lower()
        if ":" in name:
            name, _, number = name.partition(":")
            index = int(number)
        if name not in DEVICES:
            raise DeviceError(f"unknown device {type!r}: expected one of {DEVICES}")
        self.type, self.index = name, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        return normalize_device(self) == normalize_device(other) if isinstance(other, (str, device)) else False

    def __hash__(self):
        return hash(normalize_device(self))


def normalize_device(device):
    """Accept 'cpu', 'cuda' (or 'cuda:0', the device CuPy uses) and return 'cpu' or 'cuda'."""
    name = str(device).lower()
    if name in ("cuda:0",):
        name = "cuda"
    if name not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: expected one of {DEVICES}")
    return name


def xp_for(device):
    """The array module for a device name; 'cuda' raises DeviceUnavailableError when there is no GPU."""
    return _load_cupy() if normalize_device(device) == "cuda" else np


def to_device(array, device):
    """Return ``array`` on ``device`` (no copy when it is already there)."""
    device = normalize_device(device)
    if device == "cuda":
        return _load_cupy().asarray(array)
    if _is_cupy_array(array):
        return array.get()
    return np.asarray(array)


def to_numpy(array):
    """A NumPy array with the same values (a host copy for CuPy arrays, the array itself otherwise)."""
    return to_device(array, "cpu")


def l2_norm(array):
    """The L2 norm of an array on any device as a Python float, summed in float64; inf or NaN stay inf or
    NaN (no warning, no crash)."""
    with np.errstate(all="ignore"):
        return float(np.sqrt((to_numpy(array).astype(np.float64) ** 2).sum()))


def cuda_device_count():
    """How many GPUs CuPy sees (0 without CuPy or a GPU)."""
    return _load_cupy().cuda.runtime.getDeviceCount() if cuda_available() else 0


def synchronize():
    """Wait until the GPU has finished its queued work (a no-op without a GPU)."""
    if cuda_available():
        _load_cupy().cuda.get_current_stream().synchronize()


def free_cached_memory():
    """Give CuPy's pooled GPU memory back to the driver (a no-op without a GPU)."""
    if cuda_available():
        _load_cupy().get_default_memory_pool().free_all_blocks()
