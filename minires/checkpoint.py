"""Weights on disk: safetensors files, written atomically, never unpickled.

``mr.save(state_dict, path)`` writes NumPy arrays (or Tensors) to a temporary file beside ``path``, fsyncs
it and renames it over ``path``: a crash mid-write leaves the previous file intact. ``mr.load(path)`` reads
them back, refusing anything that is not a valid safetensors file with an error that says so — a pickle
(PyTorch's .pt/.pth) is never executed.
"""
import collections
import json
import os

import numpy as np
import safetensors.numpy

from . import backend
from .errors import MiniresError, MissingFileError
from .files import atomic_write_bytes
from .tensor import Tensor

_KEY_ORDER = "minires.key_order"


class CheckpointError(MiniresError, ValueError):
    """A file is missing, truncated or not safetensors."""


def _as_numpy(value):
    value = value.array if isinstance(value, Tensor) else value
    return np.asarray(backend.to_numpy(value), order="C")  # (ascontiguousarray would make 0-d arrays 1-d)


def save(state_dict, path, metadata=None):
    """Save a dict of arrays/Tensors as safetensors at ``path`` (atomically). ``metadata``: str -> str."""
    arrays = collections.OrderedDict((str(k), _as_numpy(v)) for k, v in state_dict.items())
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta[_KEY_ORDER] = json.dumps(list(arrays))
    atomic_write_bytes(path, safetensors.numpy.save(arrays, metadata=meta))


MAX_HEADER_BYTES = 100 * 2**20  # a safetensors header is JSON describing the tensors: a few KiB to a few MiB


def read_header(path, what="checkpoint"):
    """(header dict, file size) from the first bytes of a safetensors file, checked against the file's size
    before anything else is read: a huge, sparse or truncated file is refused without reading it whole."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MissingFileError(f"{what} {path!r} does not exist")
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} {path!r} is not a regular file")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = f.read(8)
        if len(start) < 8:
            raise CheckpointError(f"{path!r} is not a valid safetensors file: only {len(start)} bytes (truncated?)")
        header_size = int.from_bytes(start, "little")
        if header_size > min(size - 8, MAX_HEADER_BYTES):
            hint = " It looks like a pickle (a PyTorch .pt/.pth file?); minires never unpickles: load it in " \
                   "PyTorch and save it with safetensors.torch.save_file." if start[:1] == b"\x80" or \
                   start[:2] == b"PK" else " The file may be truncated or not a safetensors file."
            raise CheckpointError(f"{path!r} is not a valid safetensors file: its header claims {header_size} bytes "
                                  f"but the file has {size}.{hint}")
        try:
            header = json.loads(f.read(header_size))
        except ValueError as exc:
            raise CheckpointError(f"{path!r} is not a valid safetensors file: its header is not JSON ({exc})") \
                from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path!r} is not a valid safetensors file: its header is not a JSON object")
    ends = [entry.get("data_offsets", [0, 0])[1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2 and isinstance(entry["data_offsets"][1], int)]
    if 8 + header_size + max(ends, default=0) != size:
        raise CheckpointError(f"{path!r} is not a valid safetensors file: its header describes "
                              f"{max(ends, default=0)} bytes of tensors but the file holds "
                              f"{size - 8 - header_size}")
    return header, size


def load(path):
    """Load a safetensors file as an ordered dict of NumPy arrays (in the order they were saved)."""
    return load_with_metadata(path)[0]


def load_with_metadata(path):
    """(ordered dict of arrays, string metadata) from one validated read of a safetensors file."""
    header, _ = read_header(path)
    with open(path, "rb") as f:
        data = f.read()
    arrays = _parse(path, data)
    metadata = header.get("__metadata__") or {}
    order = json.loads(metadata.get(_KEY_ORDER, "[]"))
    if sorted(order) != sorted(arrays):
        order = list(arrays)
    return collections.OrderedDict((k, arrays[k]) for k in order), metadata


def load_metadata(path):
    """The string metadata stored in a safetensors file's header (only the header is read)."""
    return read_header(path)[0].get("__metadata__") or {}


def _parse(path, data):
    try:
        return safetensors.numpy.load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError (or others) for malformed files
        raise CheckpointError(f"{path!r} is not a valid safetensors file: {exc}") from None
