"""The error types minires raises for a user's bad input, all derived from one base, ``MiniresError``.

Each is also a subclass of the built-in error a Python user expects (ValueError for shapes, values and
devices, TypeError for dtypes and argument types, KeyError for unknown names, ...), so ``except ValueError``
keeps working, while ``except MiniresError`` (what the command line catches) tells a user's mistake from a
bug in minires. Messages name the op or file, what it expected and what it was given.
"""


class MiniresError(Exception):
    """Base of every error minires raises on purpose."""


class ShapeError(MiniresError, ValueError):
    """An array has the wrong shape, rank or size for the op."""


class DTypeError(MiniresError, TypeError):
    """Arrays of different or unsupported dtypes were mixed."""


class DeviceError(MiniresError, ValueError):
    """Arrays on different devices were mixed, or an unknown device was named."""


class DeviceUnavailableError(MiniresError, RuntimeError):
    """'cuda' was asked for but CuPy or a GPU is missing."""


class ArgumentError(MiniresError, ValueError):
    """An argument, option or configuration value that cannot be used (a negative padding, an unknown model)."""


class ArgumentTypeError(MiniresError, TypeError):
    """An argument of the wrong kind (a tensor exponent where a number is expected)."""


class UnknownNameError(MiniresError, KeyError):
    """A name that is not in a catalog (an op, a kernel)."""

    def __str__(self):  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class IndexOutOfRangeError(MiniresError, IndexError):
    """An index that does not fit the tensor."""


class AutogradError(MiniresError, RuntimeError):
    """A backward that cannot run as asked (no graph, a freed graph, a missing upstream gradient)."""


class DataError(MiniresError, ValueError):
    """A data set file or folder that cannot be used as it is (wrong format, inconsistent splits)."""


class MissingFileError(MiniresError, FileNotFoundError):
    """A file or folder the user named, or that a run needs, does not exist."""


class MissingDependencyError(MiniresError, ImportError):
    """An optional package a feature needs is not installed; the message says how to install it."""


class StorageError(MiniresError, OSError):
    """A directory minires must write to (a cache, an output folder) cannot be created or written."""


class DistributedError(MiniresError, RuntimeError):
    """A data-parallel run could not start or a rank of it failed (minires.distributed, bench --distributed)."""
