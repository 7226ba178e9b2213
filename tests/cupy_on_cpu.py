"""CuPy on the CPU: a stand-in for the ``cupy`` module that puts minires' whole GPU path (``device="cuda"``,
the registry's cuda slots, kernels/cuda's RawModules) on NumPy memory, and counts what a GPU would see.

    with cupy_on_cpu.installed() as device:     # minires.backend now "sees a GPU"
        model.to("cuda"); ...one training step...
    device.launches   # {kernel or array operation: how many times}, as CuPy would launch them
    device.syncs      # the operations that would wait for the GPU and copy to the host (int(), .item(), .get())

Arrays are ``ndarray``, a NumPy subclass whose type lives in a module named "cupy_on_cpu", so
``backend.device_of`` calls them "cuda" and ``backend.get_array_module`` hands out this module, named
"cupy", so ``kernels.pick`` takes the cuda slots. RawModule builds the CUDA C source with the harness
(tests/cuda_harness.py). What counts as a launch, following CuPy: every ufunc call, reduction and array
function that computes (one kernel each; ``mean`` counts as its sum and its division, one more than CuPy),
an assignment into an array, a gather by an index array, a copy; not an allocation (``empty``) or a view
(reshape, transpose, basic slicing). What counts as a sync: converting a device value to a Python scalar or
a NumPy array. Mixing a host array into a device operation raises TypeError, as on CuPy.
"""
import collections
import contextlib
import functools
import hashlib
import pathlib
import sys
import tempfile
import time
import types

import numpy as np

import cuda_harness
from minires import backend
from minires.kernels.cuda import modules

_ALLOCATIONS = {"empty", "empty_like", "ndarray"}
_HOST_RESULTS = {"may_share_memory", "shares_memory", "result_type", "dtype", "shape", "ndim", "size",
                 "can_cast", "isscalar", "iscomplexobj", "isrealobj", "promote_types", "finfo", "iinfo"}


class Device:
    """What one ``installed()`` block saw: launches by name, syncs in order, host-to-device copies."""

    def __init__(self):
        self.launches = collections.Counter()
        self.callers = collections.Counter()  # (launch, minires file:line that asked for it)
        self.bytes_moved = 0  # the arrays each launch read and wrote, once each (a table's arrays not seen)
        self.bytes_by_launch = collections.Counter()
        self.syncs = []
        self.uploads = 0

    @property
    def launch_count(self):
        return sum(self.launches.values())

    def reset(self):
        self.launches.clear()
        self.callers.clear()
        self.bytes_moved = 0
        self.bytes_by_launch.clear()
        self.syncs.clear()
        self.uploads = 0


_device = None  # the Device of the innermost installed() block


def _launch(name, arrays=()):
    """Count a launch of ``name`` that reads or writes ``arrays`` (their bytes are its memory traffic)."""
    if _device is not None:
        _device.launches[name] += 1
        moved = sum({(a.ctypes.data, a.nbytes): a.nbytes for a in arrays if isinstance(a, np.ndarray)}.values())
        _device.bytes_moved += moved
        _device.bytes_by_launch[name] += moved
        _device.callers[(name, _caller())] += 1


def _caller():
    """file:line of the minires code that asked for the launch."""
    frame = sys._getframe(2)
    while frame is not None and ("/minires/" not in frame.f_code.co_filename
                                 or "kernels/cuda/" in frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{frame.f_code.co_filename.split('/minires/')[-1]}:{frame.f_lineno}"


def _sync(what):
    if _device is not None:
        _device.syncs.append(what)


class ndarray(np.ndarray):  # noqa: N801  (cupy.ndarray's name)
    """NumPy memory standing in for device memory."""

    __module__ = "cupy_on_cpu"

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _check_on_device(ufunc.__name__, inputs)
        if out is not None:
            kwargs["out"] = tuple(_host_view(o) for o in out)
        result = getattr(ufunc, method)(*(_host_view(i) for i in inputs), **kwargs)
        outputs = result if isinstance(result, tuple) else (result,)
        _launch(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}", inputs + outputs)
        if out is not None and len(out) == 1:
            return out[0]
        return _to_device_result(result)

    def __array_function__(self, func, types_, args, kwargs):
        return _call(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("implicit conversion of a device array to NumPy (use .get()), as CuPy refuses it")

    # --- operations that NumPy does not route through the two protocols above ---------------------------
    def __getitem__(self, index):
        result = _host_view(self)[_host_index(index)]
        if isinstance(result, np.ndarray) and not np.may_share_memory(result, _host_view(self)):
            _launch("gather")
        return _to_device_result(result)

    def __setitem__(self, index, value):
        _check_on_device("setitem", (value,))
        _launch("setitem")
        _host_view(self)[_host_index(index)] = _host_view(value)

    def copy(self, order="C"):
        _launch("copy")
        return _host_view(self).copy(order).view(ndarray)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        _launch("astype")
        return _host_view(self).astype(dtype, order=order, casting=casting).view(ndarray)

    def ravel(self, order="C"):
        return _to_device_result(_call_method("ravel", self, order))

    def flatten(self, order="C"):
        _launch("copy")
        return _host_view(self).flatten(order).view(ndarray)

    def fill(self, value):
        _launch("fill")
        _host_view(self).fill(value)

    def argmax(self, axis=None, out=None, **kwargs):
        _launch("argmax")
        return _to_device_result(_host_view(self).argmax(axis))

    def argmin(self, axis=None, out=None, **kwargs):
        _launch("argmin")
        return _to_device_result(_host_view(self).argmin(axis))

    def dot(self, other):
        _launch("dot")
        return _to_device_result(_host_view(self).dot(_host_view(other)))

    def get(self):
        _sync(".get()")
        return _host_view(self).copy()

    def item(self, *args):
        _sync(".item()")
        return _host_view(self).item(*args)

    def tolist(self):
        _sync(".tolist()")
        return _host_view(self).tolist()

    def __float__(self):
        _sync("float()")
        return float(_host_view(self))

    def __int__(self):
        _sync("int()")
        return int(_host_view(self))

    def __index__(self):
        _sync("index")
        return _host_view(self).__index__()

    def __bool__(self):
        _sync("bool()")
        return bool(_host_view(self))

    def __repr__(self):
        return f"device {np.array_repr(_host_view(self))}"

    @property
    def device(self):
        return types.SimpleNamespace(id=0)

    @property
    def data(self):  # cupy.ndarray.data is a MemoryPointer; its .ptr the device address
        return types.SimpleNamespace(ptr=self.ctypes.data)


def _host_view(value):
    return value.view(np.ndarray) if isinstance(value, ndarray) else value


def _host_index(index):
    if isinstance(index, tuple):
        return tuple(_host_view(i) for i in index)
    return _host_view(index)


def _check_on_device(what, values):
    for value in values:
        if type(value) is np.ndarray and value.ndim > 0:
            raise TypeError(f"{what}: a NumPy array mixed into a device operation (CuPy refuses this)")


def _to_device_result(result):
    if isinstance(result, tuple):
        return tuple(_to_device_result(r) for r in result)
    if isinstance(result, np.ndarray):
        return result.view(ndarray)
    if isinstance(result, np.generic):  # CuPy's reductions give 0-d arrays, never host scalars
        return np.asarray(result).view(ndarray)
    return result


def _unwrap(value):
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return _host_view(value)


def _inputs(args, kwargs):
    return [a for a in list(args) + list(kwargs.values()) if isinstance(a, np.ndarray)] + \
        [a for v in list(args) + list(kwargs.values()) if isinstance(v, (list, tuple)) for a in v
         if isinstance(a, np.ndarray)]


def _call(func, args, kwargs):
    """func(*args, **kwargs) on the host views, counted as one launch unless it only allocates or views."""
    name = func.__name__
    arrays = _inputs(args, kwargs)
    _check_on_device(name, arrays)
    result = func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
    if name in _HOST_RESULTS:
        return result
    if name not in _ALLOCATIONS and (kwargs.get("out") is not None or _computes(result, arrays)):
        _launch(name, arrays + list(result if isinstance(result, tuple) else (result,)))
    return _to_device_result(result)


def _call_method(name, array, *args):
    result = getattr(_host_view(array), name)(*args)
    if _computes(result, [array]):
        _launch(name)
    return result


def _computes(result, inputs):
    """Whether producing ``result`` wrote memory (a view of an input wrote nothing)."""
    results = result if isinstance(result, tuple) else (result,)
    return any(not isinstance(r, np.ndarray) or not any(np.may_share_memory(r, _host_view(i)) for i in inputs)
               for r in results)


class _Namespace(types.ModuleType):
    """A NumPy namespace whose functions take and give device arrays."""

    def __init__(self, name, host):
        super().__init__(name)
        self._host = host

    def __getattr__(self, name):
        value = getattr(self._host, name)
        if isinstance(value, types.ModuleType):
            return _Namespace(f"{self.__name__}.{name}", value)
        if callable(value) and not isinstance(value, type):
            wrapped = functools.wraps(value)(lambda *a, **k: _call(value, a, k))
            setattr(self, name, wrapped)
            return wrapped
        return value


class CupyOnCpu(_Namespace):
    """The ``cupy`` module as minires uses it."""

    ndarray = ndarray

    def __init__(self):
        super().__init__("cupy", np)
        self.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0, getDeviceCount=lambda: 1),
                                          Event=_Event, Stream=_Stream,
                                          get_elapsed_time=lambda start, end: (end.time - start.time) * 1e3)

    def asarray(self, value, dtype=None, order=None):
        if isinstance(value, ndarray):
            return value if dtype is None or np.dtype(dtype) == value.dtype else value.astype(dtype)
        if _device is not None:
            _device.uploads += 1
        return np.array(value, dtype=dtype, order=order or "K").view(ndarray)

    def array(self, value, dtype=None, copy=True, order="K"):
        if isinstance(value, ndarray):
            return value.astype(dtype or value.dtype, order=order) if copy else self.asarray(value, dtype)
        return self.asarray(value, dtype, order)

    def asnumpy(self, value):
        return value.get() if isinstance(value, ndarray) else np.asarray(value)

    def get_array_module(self, *arrays):
        return self

    def RawModule(self, code, options=()):  # noqa: N802  (cupy.RawModule's name)
        return _CountingModule(cuda_harness.HarnessModule(_source_file(code)))


class _Event:
    """cupy.cuda.Event: the host clock at record() (every launch here has finished when it returns)."""
    time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        pass


class _Stream:
    """cupy.cuda.Stream without graph capture, which the CPU cannot stand in for."""

    def __init__(self, non_blocking=False):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def begin_capture(self):
        raise RuntimeError("CUDA graph capture is not emulated by the CPU stand-in")


class _CountingModule:
    """A harness module whose launches are counted by the Device in force."""

    def __init__(self, module):
        self._module = module

    def get_function(self, name):
        function = self._module.get_function(name)

        def launch(grid, block, args):
            _launch(name, args)
            function(grid, block, args)
        return launch


def _source_file(code):
    """RawModule gets source text; the harness builds a file: one per text, by its hash."""
    directory = pathlib.Path(tempfile.gettempdir()) / "minires-cupy-on-cpu"
    directory.mkdir(exist_ok=True)
    path = directory / f"{hashlib.sha1(code.encode()).hexdigest()[:16]}.cu"
    if not path.exists():
        path.write_text(code)
    return path


@contextlib.contextmanager
def installed(block=4, max_blocks=2):
    """Inside the block minires.backend finds this module as cupy; yields the Device that counts. Launches
    use ``block`` threads and at most ``max_blocks`` blocks (the harness runs a block's threads as
    std::threads: a GPU's 256 x thousands would be slow, and a small grid turns every grid-stride loop)."""
    global _device
    saved, saved_device = (backend._cupy, backend._cupy_problem), _device
    saved_limits = dict(modules._limits)
    modules._modules.clear()  # modules built for another device
    modules._limits.update(block=block, max_blocks=max_blocks)
    _device = Device()
    backend._cupy, backend._cupy_problem = CupyOnCpu(), None
    try:
        yield _device
    finally:
        backend._cupy, backend._cupy_problem = saved
        _device = saved_device
        modules._limits.update(saved_limits)
        modules._modules.clear()
