"""``minires.utils``: the part of torch.utils a training script imports (``utils.data``)."""
from . import data

__all__ = ["data"]
