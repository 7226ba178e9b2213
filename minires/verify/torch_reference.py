"""PyTorch reference models for parity checks, written independently of minires in plain torch.nn.

torchvision cannot be installed beside the local CPU build of torch, so its ResNet layout is re-stated
here: same module names (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc, ...), hence the same
state_dict keys, so minires weights load with ``load_state_dict``. Only the table of blocks per stage is
shared with minires (a fact from the papers, not code under test). Importing this module requires torch.
"""
import torch
from torch import nn
from torch.nn import functional as TF

from ..errors import ArgumentError
from ..models import CIFAR_PLAIN, CIFAR_PREACT, CIFAR_RESNETS, IMAGENET


class _ShortcutA(nn.Module):
    def __init__(self, out_channels, stride):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        extra = self.out_channels - x.shape[1]
        return TF.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, extra // 2, extra - extra // 2))


def _shortcut(kind, in_channels, out_channels, stride, norm):
    if kind is None:
        return None
    changes = stride != 1 or in_channels != out_channels
    if kind == "C" or (kind == "B" and changes):
        layers = [nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)]
        return nn.Sequential(*layers, nn.BatchNorm2d(out_channels)) if norm else nn.Sequential(*layers)
    if kind == "A" and changes:
        return _ShortcutA(out_channels, stride)
    return nn.Identity()


class TorchBasic(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, shortcut):
        super().__init__()
        self.relu = nn.ReLU()  # a module, so that tools can hook every ReLU (parity counts kink flips)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _shortcut(shortcut, inplanes, planes, stride, norm=True)

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out if self.downsample is None else out + self.downsample(x))


class TorchBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, shortcut):
        super().__init__()
        self.relu = nn.ReLU()  # a module, so that tools can hook every ReLU (parity counts kink flips)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = _shortcut(shortcut, inplanes, planes * 4, stride, norm=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out if self.downsample is None else out + self.downsample(x))


class TorchPreActBasic(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, shortcut):
        super().__init__()
        self.relu = nn.ReLU()  # a module, so that tools can hook every ReLU (parity counts kink flips)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample = _shortcut(shortcut, inplanes, planes, stride, norm=False)

    def forward(self, x):
        pre = self.relu(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
        if self.downsample is None:
            return out
        return out + (self.downsample(pre) if isinstance(self.downsample, nn.Sequential) else self.downsample(x))


class TorchImageNetResNet(nn.Module):
    def __init__(self, depth, num_classes=1000, shortcut="B", in_channels=3):
        super().__init__()
        self.relu = nn.ReLU()  # a module, so that tools can hook every ReLU (parity counts kink flips)
        kind, layers = IMAGENET[depth]
        block = TorchBasic if kind == "basic" else TorchBottleneck
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (planes, count) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(count):
                blocks.append(block(inplanes, planes, (1 if i == 0 else 2) if j == 0 else 1, shortcut))
                inplanes = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TorchCifarResNet(nn.Module):
    def __init__(self, depth, shortcut="A", preact=False, num_classes=10, in_channels=3):
        super().__init__()
        self.relu = nn.ReLU()  # a module, so that tools can hook every ReLU (parity counts kink flips)
        n = (depth - 2) // 6
        block = TorchPreActBasic if preact else TorchBasic
        self.preact = preact
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        if not preact:
            self.bn1 = nn.BatchNorm2d(16)
        inplanes = 16
        for i, planes in enumerate((16, 32, 64)):
            blocks = []
            for j in range(n):
                blocks.append(block(inplanes, planes, 2 if (i > 0 and j == 0) else 1, shortcut))
                inplanes = planes
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        if preact:
            self.final_bn = nn.BatchNorm2d(64)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        if not self.preact:
            x = self.relu(self.bn1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.preact:
            x = self.relu(self.final_bn(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(name, **kwargs):
    """The torch twin of ``minires.models.get(name, **kwargs)`` (same keyword arguments)."""
    kwargs.pop("seed", None)
    kwargs.pop("zero_init_residual", None)  # initial values are copied from minires anyway
    depth = int(name.lstrip("abcdefghijklmnopqrstuvwxyz_"))
    if name.startswith("resnet") and depth in IMAGENET:
        return TorchImageNetResNet(depth, **kwargs)
    if name.startswith("resnet") and depth in CIFAR_RESNETS:
        return TorchCifarResNet(depth, **{"shortcut": "A", **kwargs})
    if name.startswith("plain") and depth in CIFAR_PLAIN:
        return TorchCifarResNet(depth, **{**kwargs, "shortcut": None})
    if name.startswith("preact_resnet") and depth in CIFAR_PREACT:
        return TorchCifarResNet(depth, **{"shortcut": "A", **kwargs, "preact": True})
    raise ArgumentError(f"no torch reference for model {name!r}")
