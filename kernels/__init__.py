"""minires.kernels: the hand-written kernels and the registry that picks one implementation per op.

Each kernel family (im2col, batch-norm, pooling, residual join, ...) lives in its own file with a readable
NumPy reference and a numba CPU version of the same signature; the CUDA C of the CuPy version sits in
kernels/cuda/. A Function in minires/functional picks its kernel in one line:

    im2col = kernels.pick("im2col", xp)

CuPy arrays get the GPU kernel; NumPy arrays get the numba kernel when numba imports, else the reference.
The environment variable MINIRES_KERNELS=reference|numba forces one CPU flavour (for teaching, debugging and
tests). This package never imports the Tensor or Function classes.
"""
import os

FLAVOURS = ("reference", "numba")

_registry = {}  # op name -> {"reference": fn, "numba": fn or None, "cuda": fn or None}


def register(op, *, reference, numba=None, cuda=None):
    """Register the implementations of one kernel (numba and cuda may be missing)."""
    _registry[op] = {"reference": reference, "numba": numba, "cuda": cuda}


def registered():
    return sorted(_registry)


def cpu_flavour():
    """The CPU flavour in force: MINIRES_KERNELS if set, else numba when it imports, else the reference."""
    forced = os.environ.get("MINIRES_KERNELS", "").strip().lower()
    if forced:
        if forced not in FLAVOURS:
            raise ValueError(f"MINIRES_KERNELS must be one of {FLAVOURS}, got {forced!r}")
        if forced == "numba" and not numba_available():
            raise RuntimeError("MINIRES_KERNELS=numba but numba cannot be imported")
        return forced
    return "numba" if numba_available() else "reference"


def numba_available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def pick(op, xp):
    """The implementation of kernel ``op`` for arrays of module ``xp`` (numpy or cupy)."""
    try:
        versions = _registry[op]
    except KeyError:
        raise KeyError(f"no kernel named {op!r}; registered kernels: {', '.join(registered()) or 'none'}") from None
    if xp.__name__ == "cupy":
        if versions["cuda"] is None:
            raise NotImplementedError(f"kernel {op!r} has no CUDA version yet")
        return versions["cuda"]
    flavour = cpu_flavour()
    return versions[flavour] or versions["reference"]
