"""Modules (``minires.nn``): Module, Parameter, the layers of a ResNet, and the residual blocks.
``minires.nn.functional`` is minires.functional itself (as torch.nn.functional, imported as F)."""
import sys

from .. import functional
from ..missing import missing
from . import init
from .blocks import (SHORTCUTS, BasicBlock, Bottleneck, OptionAShortcut, PreActBasicBlock, PreActBottleneck,
                     ResidualJoin, fuse, make_shortcut)
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, CrossEntropyLoss, Dropout, Flatten, Identity,
                     Linear, MaxPool2d, MSELoss, ReLU, Sequential)
from . import parallel
from .lazy import LazyBatchNorm2d, LazyConv2d, LazyLinear
from .parallel import DataParallel
from .module import Module, Parameter, StateDictError, functional_call
from .sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm

__all__ = [
    "Module", "Parameter", "Dropout", "CrossEntropyLoss", "MSELoss", "StateDictError", "Sequential", "Conv2d", "BatchNorm2d", "Linear", "ReLU",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Identity", "BasicBlock", "Bottleneck",
    "PreActBasicBlock", "PreActBottleneck", "OptionAShortcut", "ResidualJoin", "fuse", "make_shortcut", "SHORTCUTS",
    "functional_call", "init", "LazyConv2d", "LazyBatchNorm2d", "LazyLinear", "functional",
    "DataParallel", "parallel", "SyncBatchNorm", "convert_sync_batchnorm",
]

sys.modules[__name__ + ".functional"] = functional  # `import minires.nn.functional as F` works too


def __getattr__(name):
    raise missing("torch.nn", name)
