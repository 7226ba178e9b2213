"""Converting weights between PyTorch state_dicts (saved with safetensors) and minires checkpoints.

Both sides use torchvision's key names, so conversion is mostly checking: keys, shapes and dtypes against a
model when one is named. A DataParallel ``module.`` prefix is stripped; float64 weights become float32 for a
minires checkpoint; ``num_batches_tracked`` stays int64 as PyTorch expects.
"""
import collections

import numpy as np

from . import models
from .checkpoint import load, load_metadata, save


def convert(source, destination, to="minires", model=None, num_classes=None):
    state = load(source)
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
