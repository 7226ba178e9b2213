"""The two ResNet layouts: torchvision's ImageNet ResNet and the CIFAR ResNet of He et al. (2015, sec. 4.2).

ImageNet (224x224): conv 7x7/2 (64) -> BN -> ReLU -> max-pool 3x3/2 -> 4 stages of blocks with 64, 128, 256,
512 planes (stride 2 from the second stage on) -> global average pool -> fc.
CIFAR (32x32): conv 3x3 (16) -> BN -> ReLU -> 3 stages of n basic blocks with 16, 32, 64 filters on 32, 16, 8
maps (stride 2 from the second stage on) -> global average pool -> fc: 6n + 2 weighted layers.
Pre-activation CIFAR nets (He et al. 2016) drop the stem's BN-ReLU (each block pre-activates its input) and
add a final BN-ReLU before the pool, named ``final_bn``.

Initialisation as torchvision: Kaiming normal (fan_out, ReLU) for every convolution, BN weight 1 and bias 0,
PyTorch's default for the fc layer; ``zero_init_residual`` zeroes the last BN weight of each residual branch
(the last convolution for pre-activation blocks), so every block starts as its shortcut.
"""
from .. import functional as F
from ..errors import ArgumentError
from ..nn import (
    AdaptiveAvgPool2d,
    BasicBlock,
    BatchNorm2d,
    Bottleneck,
    Conv2d,
    Linear,
    MaxPool2d,
    Module,
    PreActBasicBlock,
    PreActBottleneck,
    Sequential,
    init,
)
from ..rng import as_generator

BLOCKS = {("basic", False): BasicBlock, ("bottleneck", False): Bottleneck,
          ("basic", True): PreActBasicBlock, ("bottleneck", True): PreActBottleneck}


def _stage(block, in_channels, planes, count, stride, shortcut, rng):
    """``count`` blocks; the first one changes stride and width. Returns (stage, out_channels)."""
    blocks = []
    for i in range(count):
        blocks.append(block(in_channels, planes, stride if i == 0 else 1, shortcut=shortcut, rng=rng))
        in_channels = planes * block.expansion
    return Sequential(*blocks), in_channels


def _initialise(model, zero_init_residual, rng):
    for module in model.modules():
        if isinstance(module, Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", rng=rng)
        elif isinstance(module, BatchNorm2d):
            init.constant_(module.weight, 1.0)
            init.constant_(module.bias, 0.0)
    if zero_init_residual:
        last = {BasicBlock: "bn2", Bottleneck: "bn3", PreActBasicBlock: "conv2", PreActBottleneck: "conv3"}
        for module in model.modules():
            if type(module) in last:
                init.constant_(getattr(module, last[type(module)]).weight, 0.0)


class ResNet(Module):
    """torchvision's ImageNet ResNet; ``layers`` gives the number of blocks per stage."""

    def __init__(self, block="basic", layers=(2, 2, 2, 2), num_classes=1000, shortcut="B", in_channels=3,
                 zero_init_residual=False, seed=None):
        super().__init__()
        rng = as_generator(seed)
        block = BLOCKS[(block, False)]
        self.conv1 = Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False, rng=rng)
        self.bn1 = BatchNorm2d(64)
        self.maxpool = MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for i, (planes, count) in enumerate(zip((64, 128, 256, 512), layers)):
            stage, channels = _stage(block, channels, planes, count, 1 if i == 0 else 2, shortcut, rng)
            self.add_module(f"layer{i + 1}", stage)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc = Linear(channels, num_classes, rng=rng)
        _initialise(self, zero_init_residual, rng)

    def forward(self, x):                                  # (N, 3, H, W)
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512 e, H/32, W/32)
        return self.fc(F.flatten(self.avgpool(x), 1))         # (N, num_classes)


class CifarResNet(Module):
    """He et al.'s CIFAR network: 3 stages of n basic blocks (16/32/64 filters), depth 6n + 2."""

    def __init__(self, depth=20, shortcut="A", preact=False, num_classes=10, in_channels=3,
                 zero_init_residual=False, seed=None):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ArgumentError(f"cifar_resnet: depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, "
                             f"1202, ...), got {depth!r}")
        rng = as_generator(seed)
        n = (depth - 2) // 6
        block = BLOCKS[("basic", preact)]
        self.depth, self.preact = depth, preact
        self.conv1 = Conv2d(in_channels, 16, 3, padding=1, bias=False, rng=rng)
        if not preact:
            self.bn1 = BatchNorm2d(16)
        channels = 16
        for i, planes in enumerate((16, 32, 64)):
            stage, channels = _stage(block, channels, planes, n, 1 if i == 0 else 2, shortcut, rng)
            self.add_module(f"layer{i + 1}", stage)
        if preact:
            self.final_bn = BatchNorm2d(channels)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc = Linear(channels, num_classes, rng=rng)
        _initialise(self, zero_init_residual, rng)

    def forward(self, x):                                  # (N, C, 32, 32)
        x = self.conv1(x)                                  # (N, 16, 32, 32)
        if not self.preact:
            x = F.relu(self.bn1(x))
        x = self.layer3(self.layer2(self.layer1(x)))       # (N, 64, 8, 8)
        if self.preact:
            x = F.relu(self.final_bn(x))
        return self.fc(F.flatten(self.avgpool(x), 1))         # (N, num_classes)
