"""Weights on disk: safetensors files, written atomically, never unpickled.

``mr.save(state_dict, path)`` writes NumPy arrays (or Tensors) to a temporary file beside ``path``, fsyncs
it and renames it over ``path``: a crash mid-write leaves the previous file intact. ``mr.load(path)`` reads
them back, refusing anything that is not a valid safetensors file with an error that says so — a pickle
(PyTorch's .pt/.pth) is never executed.
"""
import collections
import json
import os
import tempfile

import numpy as np
import safetensors.numpy

from . import backend
from .errors import MiniresError, MissingFileError
from .tensor import Tensor

_KEY_ORDER = "minires.key_order"


class CheckpointError(MiniresError, ValueError):
    """A file is missing, truncated or not safetensors."""


def _as_numpy(value):
    value = value.data if isinstance(value, Tensor) else value
    return np.asarray(backend.to_numpy(value), order="C")  # (ascontiguousarray would make 0-d arrays 1-d)


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)  # make the rename itself durable
    finally:
        os.close(directory_fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(state_dict, path, metadata=None):
    """Save a dict of arrays/Tensors as safetensors at ``path`` (atomically). ``metadata``: str -> str."""
    arrays = collections.OrderedDict((str(k), _as_numpy(v)) for k, v in state_dict.items())
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta[_KEY_ORDER] = json.dumps(list(arrays))
    atomic_write_bytes(path, safetensors.numpy.save(arrays, metadata=meta))


def read_bytes(path, what="checkpoint"):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"{what} {path!r} does not exist")
    with open(path, "rb") as f:
        return f.read()


def load(path):
    """Load a safetensors file as an ordered dict of NumPy arrays (in the order they were saved)."""
    data = read_bytes(path)
    arrays = _parse(path, data)
    order = json.loads(load_metadata(path, data).get(_KEY_ORDER, "[]"))
    if sorted(order) != sorted(arrays):
        order = list(arrays)
    return collections.OrderedDict((k, arrays[k]) for k in order)


def load_metadata(path, data=None):
    """The string metadata stored in a safetensors file's header."""
    data = read_bytes(path) if data is None else data
    header_size = _header_size(path, data)
    try:
        header = json.loads(data[8:8 + header_size])
    except ValueError as exc:
        raise CheckpointError(f"{path!r} is not a valid safetensors file: its header is not JSON ({exc})") from None
    return header.get("__metadata__") or {}


def _header_size(path, data):
    if len(data) < 8:
        raise CheckpointError(f"{path!r} is not a valid safetensors file: only {len(data)} bytes (truncated?)")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        hint = " It looks like a pickle (a PyTorch .pt/.pth file?); minires never unpickles: load it in " \
               "PyTorch and save it with safetensors.torch.save_file." if data[:1] == b"\x80" or \
               data[:2] == b"PK" else " The file may be truncated."
        raise CheckpointError(f"{path!r} is not a valid safetensors file: its header claims {size} bytes but the "
                              f"file has {len(data)}.{hint}")
    return size


def _parse(path, data):
    _header_size(path, data)
    try:
        return safetensors.numpy.load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError (or others) for malformed files
        raise CheckpointError(f"{path!r} is not a valid safetensors file: {exc}") from None
