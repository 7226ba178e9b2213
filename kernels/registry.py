"""The registry behind ``minires.kernels.pick``: one entry per kernel, one implementation per flavour."""
import contextlib
import os

from minires.errors import ArgumentError, UnknownNameError

FLAVOURS = ("reference", "numba")

_registry = {}  # op name -> {"reference": fn, "numba": fn or None, "cuda": fn or None}
_forced = []  # flavours forced by ``using`` (innermost last); they win over MINIRES_KERNELS


def register(op, *, reference, numba=None, cuda=None):
    """Register the implementations of one kernel (numba and cuda may be missing)."""
    _registry[op] = {"reference": reference, "numba": numba, "cuda": cuda}


def registered():
    return sorted(_registry)


def implementation(op, flavour):
    """Kernel ``op`` in one flavour ("reference", "numba" or "cuda"), or None where that slot is empty;
    for tests and benchmarks that compare flavours side by side."""
    return _registry[op][flavour]


@contextlib.contextmanager
def using(flavour):
    """Run the kernels of one CPU flavour inside a ``with`` block (gradcheck --flavour, tests, benchmarks).
    ``"cuda"`` runs the CUDA kernels on whatever arrays they get (the reference where a slot is empty): the
    tests use it with NumPy arrays and the CPU harness standing in for the GPU (kernels/cuda/modules.py)."""
    if flavour not in FLAVOURS + ("cuda",):
        raise ArgumentError(f"kernel flavour must be one of {FLAVOURS + ('cuda',)}, got {flavour!r}")
    if flavour == "numba" and not numba_available():
        raise ArgumentError("the numba kernel flavour was asked for but numba cannot be imported")
    _forced.append(flavour)
    try:
        yield
    finally:
        _forced.pop()


def cpu_flavour():
    """The CPU flavour in force: the innermost ``using`` block, else MINIRES_KERNELS if set, else numba when
    it imports, else the reference."""
    if _forced:
        return _forced[-1]
    forced = os.environ.get("MINIRES_KERNELS", "").strip().lower()
    if forced:
        if forced not in FLAVOURS:
            raise ArgumentError(f"MINIRES_KERNELS must be one of {FLAVOURS}, got {forced!r}")
        if forced == "numba" and not numba_available():
            raise ArgumentError("MINIRES_KERNELS=numba but numba cannot be imported")
        return forced
    return "numba" if numba_available() else "reference"


def cuda_in_force(xp):
    """Whether arrays of module ``xp`` run the CUDA kernels: CuPy arrays, or any inside ``using("cuda")``."""
    return xp.__name__ == "cupy" or cpu_flavour() == "cuda"


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
        raise UnknownNameError(f"no kernel named {op!r}; registered kernels: {', '.join(registered()) or 'none'}") from None
    if xp.__name__ == "cupy":
        # The slot for the CUDA C version; until it is filled, the NumPy reference runs on CuPy arrays
        # (it is written against the array module of its input, so it works there, slowly).
        return versions["cuda"] or versions["reference"]
    flavour = cpu_flavour()
    return versions[flavour] or versions["reference"]
