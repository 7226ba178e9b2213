"""The kernel table, filled by convention (the rules that choose from it are kernels/__init__.py's).

A family module (kernels/residual.py, ...) defines each kernel NAME as ``NAME_reference`` (NumPy) and, where
it has one, ``NAME_numba`` (None when numba does not import); its CUDA twin, ``kernels/cuda/<family>.py``,
defines ``NAME``. ``collect(family, cuda_twin)`` reads those names: nobody registers anything by hand, and a
family never imports its CUDA twin (the twin may import the family). kernels/__init__.py's rules look
kernels up here as ``table.NAME`` (attribute access, written out, so grep finds every use).
"""
from typing import Callable, NamedTuple, Optional

from minires.errors import UnknownNameError


class Versions(NamedTuple):
    """One kernel's implementations; numba and cuda may be None (then the reference runs)."""
    reference: Callable
    numba: Optional[Callable]
    cuda: Optional[Callable]


class Table:
    """name -> Versions, read as attributes: ``table.im2col.numba``."""

    def __getattr__(self, name):
        raise UnknownNameError(f"no kernel named {name!r}; kernels: {', '.join(registered())}")


table = Table()


def collect(family, cuda_twin=None):
    """Enter every ``NAME_reference`` of module ``family`` in the table with its ``NAME_numba`` twin and
    ``cuda_twin.NAME``. A name two families define differently is a mistake, refused at import."""
    for attribute in dir(family):
        if not attribute.endswith("_reference") or attribute.startswith("_"):
            continue
        name = attribute[:-len("_reference")]
        versions = Versions(getattr(family, attribute), getattr(family, name + "_numba", None),
                            getattr(cuda_twin, name, None))
        if name in vars(table) and vars(table)[name] != versions:
            raise RuntimeError(f"kernel {name!r} is defined by two families ({family.__name__})")
        setattr(table, name, versions)


def registered():
    return sorted(vars(table))
