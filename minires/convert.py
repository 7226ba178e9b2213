"""Converting weights between PyTorch state_dicts and minires checkpoints.

The source may be safetensors or a file written by ``torch.save`` (.pt/.pth/.th, read by the weights-only
unpickler, nothing executed); a training checkpoint dict gives its "state_dict" (or "model") entry.

Both sides use torchvision's key names, so conversion is mostly checking: keys, shapes and dtypes against a
model when one is named. A DataParallel ``module.`` prefix is stripped; float64 weights become float32 for a
minires checkpoint; ``num_batches_tracked`` stays int64 as PyTorch expects.
"""
import collections

import numpy as np

from . import models, serialization
from .checkpoint import CheckpointError, load_metadata, save
from .tensor import Tensor


def read_state_dict(source):
    """The state_dict in ``source`` as NumPy arrays: the file's dict itself, or its "state_dict"/"model"."""
    obj = serialization.load(source)
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, (Tensor, np.ndarray)) for v in obj.values()):
        raise CheckpointError(f"{str(source)!r} holds no state_dict (a dict of tensors, or a checkpoint dict with "
                              f"a 'state_dict' or 'model' entry)")
    return collections.OrderedDict((str(k), v.numpy() if isinstance(v, Tensor) else v) for k, v in obj.items())


def convert(source, destination, to="minires", model=None, num_classes=None):
    state = read_state_dict(source)
    state = collections.OrderedDict((k[len("module."):] if k.startswith("module.") else k, v)
                                    for k, v in state.items())
    if model is not None:
        kwargs = {"num_classes": num_classes} if num_classes else {}
        net = models.get(model, **kwargs)
        net.load_state_dict(state, strict=True)  # raises StateDictError listing every problem
    if to == "minires":
        state = collections.OrderedDict((k, v.astype(np.float32) if v.dtype == np.float64 else v)
                                        for k, v in state.items())
    metadata = {"format": "pt"} if to == "torch" else {"format": "minires", "source": str(source)}
    if model is not None:
        metadata["model"] = model
    save(state, destination, metadata=metadata)
    return {"tensors": len(state), "parameters": int(sum(v.size for v in state.values())),
            "metadata": load_metadata(destination)}
