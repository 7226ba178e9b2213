"""The error types minires raises for a user's bad input.

Each is a subclass of the built-in error a Python user expects (ValueError for shapes and devices,
TypeError for dtypes), so ``except ValueError`` keeps working, while tests and tools can catch the precise
kind. Messages name the op, what it expected and what it was given.
"""


class ShapeError(ValueError):
    """An array has the wrong shape, rank or size for the op."""


class DTypeError(TypeError):
    """Arrays of different or unsupported dtypes were mixed."""


class DeviceError(ValueError):
    """Arrays on different devices were mixed, or an unknown device was named."""


class DeviceUnavailableError(RuntimeError):
    """'cuda' was asked for but CuPy or a GPU is missing."""
