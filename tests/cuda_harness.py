"""CUDA-on-CPU: the .cu files of kernels/cuda built by g++ against tests/cuda_on_cpu.h and loaded behind a
module object with cupy.RawModule's call shape, ``module.get_function(name)(grid, block, args)``, so that
kernels/cuda's launch code runs unchanged on NumPy arrays standing in for device memory.

Arguments follow CuPy's rules for a raw kernel and are checked against the kernel's C signature (read from
the preprocessed source): an array must be C-contiguous with the dtype its pointer names (a const pointer
may be read-only), a Python int becomes a ``long long``, a float a ``double``, a NumPy scalar keeps its type.
Anything else is refused: on a GPU it would be read as the wrong bytes. Each module counts its launches.

Builds: "plain" (-O1), "address" (ASan + UBSan) and "thread" (TSan); the sanitizer builds are meant for a
fresh Python process with the sanitizer's runtime preloaded (tests/test_cuda_kernels.py does that).
"""
import ctypes
import hashlib
import os
import pathlib
import re
import subprocess
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
HEADER = HERE / "cuda_on_cpu.h"
FLAGS = {"plain": ["-O1"],
         "address": ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                     "-fno-omit-frame-pointer"],
         "thread": ["-O1", "-fsanitize=thread"]}
RUNTIME = {"address": "libasan.so", "thread": "libtsan.so"}  # what a sanitizer build needs preloaded
_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')
_POINTEE = {"float": np.float32, "double": np.float64, "long long": np.int64, "int": np.int32}
_SCALAR = {"float": ctypes.c_float, "double": ctypes.c_double, "long long": ctypes.c_longlong, "int": ctypes.c_int}


def kernel_signatures(source):
    """{kernel name: [C type of each parameter]} of the ``extern "C" __global__`` functions, after macros."""
    expanded = subprocess.run(["g++", "-E", "-P", "-x", "c++", "-D__global__=__global__", str(source)],
                              capture_output=True, text=True, check=True).stdout
    return {name: [_parameter_type(p) for p in params.split(",")] for name, params in _KERNEL.findall(expanded)}


def _parameter_type(parameter):
    words = " ".join(parameter.replace("*", " * ").split())
    name = words.split()[-1]
    return words[:-len(name)].strip().replace(" *", "*")


def runtime_library(sanitizer):
    """The path of the sanitizer runtime to preload into Python for a sanitizer build."""
    return subprocess.run(["g++", f"-print-file-name={RUNTIME[sanitizer]}"], capture_output=True, text=True,
                          check=True).stdout.strip()


def build(source, sanitizer="plain"):
    """The shared library of ``source`` for this harness (cached by the text of the source, header and flags)."""
    source = pathlib.Path(source).resolve()
    signatures = kernel_signatures(source)
    wrappers = [f'#include "{HEADER}"', f'#include "{source}"']
    for name, types in signatures.items():
        call = ", ".join(f"*({kind}*)args[{i}]" for i, kind in enumerate(types))
        wrappers.append(f'extern "C" void harness_{name}(const unsigned* grid, const unsigned* block, void** args) '
                        f"{{ cuda_on_cpu::launch(grid, block, [&] {{ {name}({call}); }}); }}")
    text = "\n".join(wrappers) + "\n"
    flags = ["-std=c++20", "-g", "-fPIC", "-shared", "-pthread", "-Wall", "-Wextra", "-Werror"] + FLAGS[sanitizer]
    digest = hashlib.sha1((text + source.read_text() + HEADER.read_text() + " ".join(flags)).encode()).hexdigest()
    directory = pathlib.Path(tempfile.gettempdir()) / f"minires-cuda-harness-{os.getuid()}"
    directory.mkdir(exist_ok=True)
    library = directory / f"{source.stem}-{sanitizer}-{digest[:12]}.so"
    if not library.exists():
        wrapper = library.with_suffix(".cpp")
        wrapper.write_text(text)
        temporary = library.with_suffix(f".{os.getpid()}.tmp")
        compiled = subprocess.run(["g++", *flags, str(wrapper), "-o", str(temporary)], capture_output=True, text=True)
        if compiled.returncode:
            raise RuntimeError(f"g++ could not build {source.name} for the harness:\n{compiled.stderr[-4000:]}")
        os.replace(temporary, library)
    return library, signatures


class HarnessModule:
    """cupy.RawModule's call shape over a harness build of one .cu file."""

    def __init__(self, source, sanitizer="plain"):
        path, self.signatures = build(source, sanitizer)
        self._library = ctypes.CDLL(str(path))
        self.launches = 0

    def get_function(self, name):
        if name not in self.signatures:
            raise AttributeError(f"no kernel {name!r}; the module has {sorted(self.signatures)}")
        return HarnessFunction(self, name)


class HarnessFunction:
    def __init__(self, module, name):
        self.module, self.name, self.types = module, name, module.signatures[name]
        self._entry = getattr(module._library, f"harness_{name}")
        self._entry.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._entry.restype = None

    def __call__(self, grid, block, args):
        if len(args) != len(self.types):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.types)} parameters")
        values = [self._value(i, a, kind) for i, (a, kind) in enumerate(zip(args, self.types))]
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        dims = [(ctypes.c_uint * 3)(*_dim3(d)) for d in (grid, block)]
        self.module.launches += 1
        self._entry(ctypes.cast(dims[0], ctypes.c_void_p), ctypes.cast(dims[1], ctypes.c_void_p), pointers)

    def _value(self, index, value, kind):
        where = f"{self.name} argument {index} ({kind})"
        if kind.endswith("*"):
            pointee = kind.replace("const", "").rstrip("*").strip()
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{where}: expected an array, got {type(value).__name__}")
            if value.dtype != _POINTEE[pointee]:
                raise TypeError(f"{where}: array of dtype {value.dtype}, the kernel reads {pointee}")
            if not value.flags.c_contiguous:
                raise ValueError(f"{where}: the array is not C-contiguous")
            if "const" not in kind and not value.flags.writeable:
                raise ValueError(f"{where}: the kernel writes a read-only array")
            return ctypes.c_void_p(value.ctypes.data)
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where}: pass a bool as an int")
        if isinstance(value, int):
            passed = "long long"  # CuPy passes a Python int as int64
        elif isinstance(value, float):
            passed = "double"
        elif isinstance(value, np.generic):
            passed = {np.float32: "float", np.float64: "double", np.int64: "long long", np.int32: "int"}.get(
                type(value), str(value.dtype))
        else:
            raise TypeError(f"{where}: cannot pass a {type(value).__name__}")
        if passed != kind:
            raise TypeError(f"{where}: passed as {passed}, the kernel reads {kind}")
        return _SCALAR[kind](value)


def _dim3(d):
    d = (d,) if isinstance(d, int) else tuple(d)
    return d + (1,) * (3 - len(d))
