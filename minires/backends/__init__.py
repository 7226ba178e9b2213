"""``minires.backends``: the switches PyTorch scripts set on torch.backends (cudnn)."""
from . import cudnn

__all__ = ["cudnn"]
