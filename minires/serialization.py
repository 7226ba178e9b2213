"""``minires.save`` / ``minires.load``: what training scripts save — a model's state_dict, an optimiser's, an
epoch, a best accuracy, nested in dicts and lists — as one safetensors file, and what ``torch.save`` wrote.

A minires file is safetensors: every tensor (and NumPy array) is an entry "0", "1", ... and the structure
around them is JSON in the header's metadata, so loading runs no code:

    {"dict": [["epoch", {"int": 3}], ["state_dict", {"dict": [["conv1.weight", {"tensor": "0"}], ...]}],
              ["best_prec1", {"float": 91.3}]]}

Dict keys keep their type (an optimiser's state is keyed by int). A safetensors file written by any other
tool loads as an ordered dict of Tensors. A file written by ``torch.save`` (.pt, .pth, .th: zip or legacy)
goes through minires/weights_only_unpickler.py, which never runs code from the file.
"""
import collections
import json
import math
import numbers
import os

import numpy as np

from . import backend, checkpoint
from .errors import ArgumentTypeError, MissingFileError
from .size import Size
from .tensor import Tensor
from . import weights_only_unpickler

STRUCTURE_KEY = "minires.structure"


def save(obj, f, pickle_module=None, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Write ``obj`` (tensors, arrays, numbers, strings, None, and dicts, lists and tuples of them) to the
    path ``f``, atomically. torch's extra arguments are accepted and ignored: minires never pickles."""
    if pickle_module is not None:
        raise ArgumentTypeError("save: minires writes safetensors, never pickle; leave pickle_module out")
    arrays = collections.OrderedDict()
    structure = _encode(obj, arrays, "the object")
    checkpoint.save(arrays, _path(f, "save"), metadata={STRUCTURE_KEY: json.dumps(structure)})


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Read what ``save`` wrote (or any safetensors file, or a torch.save file) back; tensors as Tensors,
    on ``map_location`` when one is given ("cpu", "cuda", a minires.device). A torch file is always read
    weights-only (``weights_only=False`` cannot make minires run pickle code)."""
    if weights_only is False or pickle_module is not None:
        raise ArgumentTypeError("load: minires only loads weights (tensors, containers, numbers); it never runs "
                                "pickle code, so weights_only=False and pickle_module= are refused")
    path = _path(f, "load")
    if not os.path.exists(path):
        raise MissingFileError(f"load: {path!r} does not exist")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if weights_only_unpickler.is_torch_file(head):
        obj = weights_only_unpickler.load(path)
    else:
        arrays, metadata = checkpoint.load_with_metadata(path)
        text = metadata.get(STRUCTURE_KEY)
        if text is None:
            obj = collections.OrderedDict((k, Tensor._make(v)) for k, v in arrays.items())
        else:
            try:
                obj = _decode(json.loads(text), arrays)
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                raise checkpoint.CheckpointError(f"{path!r}: its minires structure is damaged ({exc})") from None
    device = _device(map_location)
    return obj if device is None else _to_device(obj, device)


def _path(f, op):
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    raise ArgumentTypeError(f"{op}: give a file path (str or pathlib.Path); minires does not read or write "
                            f"open file objects")


def _encode(value, arrays, where):
    if isinstance(value, Tensor) or isinstance(value, np.ndarray) or backend.get_array_module(value) is not np:
        key = str(len(arrays))
        arrays[key] = value.array if isinstance(value, Tensor) else value
        return {"tensor" if not isinstance(value, np.ndarray) else "ndarray": key}
    if value is None or isinstance(value, (bool, np.bool_)):
        return {"none": None} if value is None else {"bool": bool(value)}
    if isinstance(value, numbers.Integral):
        return {"int": int(value)}
    if isinstance(value, numbers.Real):
        number = float(value)
        return {"float": number if math.isfinite(number) else repr(number)}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, Size):
        return {"size": list(value)}
    if isinstance(value, dict):  # an OrderedDict (a state_dict) comes back as one, a dict as a dict
        kind = "odict" if isinstance(value, collections.OrderedDict) else "dict"
        return {kind: [[_encode_key(k, where), _encode(v, arrays, f"{where}[{k!r}]")] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]}
    raise ArgumentTypeError(f"save: {where} is a {type(value).__module__}.{type(value).__name__}; minires saves "
                            f"tensors, arrays, numbers, strings, None and dicts/lists/tuples of them (a model: "
                            f"save its state_dict())")


def _encode_key(key, where):
    if isinstance(key, (str, bool, numbers.Integral, numbers.Real)) or key is None:
        return _encode(key, None, where)
    raise ArgumentTypeError(f"save: a dict key in {where} is a {type(key).__name__}; keys must be strings or "
                            f"numbers")


def _decode(node, arrays):
    (kind, value), = node.items()
    if kind in ("tensor", "ndarray"):
        return Tensor._make(arrays[value]) if kind == "tensor" else arrays[value]
    if kind == "none":
        return None
    if kind in ("bool", "int", "str"):
        return {"bool": bool, "int": int, "str": str}[kind](value)
    if kind == "float":
        return float(value)  # "inf", "nan" and "-inf" were written as their repr
    if kind == "size":
        return Size(value)
    if kind in ("dict", "odict"):
        return (dict if kind == "dict" else collections.OrderedDict)((_decode(k, arrays), _decode(v, arrays))
                                                                      for k, v in value)
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays) for v in value]
        return items if kind == "list" else tuple(items)
    raise checkpoint.CheckpointError(f"unknown entry kind {kind!r}")


def _device(map_location):
    if map_location is None or callable(map_location) or isinstance(map_location, dict):
        return None if map_location is None else "cpu"
    return backend.normalize_device(map_location)


def _to_device(value, device):
    if isinstance(value, Tensor):
        return value if value.device == device else Tensor._make(backend.to_device(value.array, device))
    if isinstance(value, dict):
        return type(value)((k, _to_device(v, device)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not isinstance(value, Size):
        return type(value)(_to_device(v, device) for v in value)
    return value
