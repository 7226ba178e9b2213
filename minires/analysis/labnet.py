"""Networks for the experiments, with every knob the classic results turn on.

LabNet (images): a stem convolution, then ``blocks`` blocks at constant width and size, then global average
pooling and a linear classifier. Each block is

    plain:     h' = act(BN(conv(act(BN(conv(h))))))
    residual:  h' = act(h + BN(conv(act(BN(conv(h))))))        (the BN layers only with batch_norm=True)

so a net has 2 * blocks + 2 weighted layers (blocks = 9 gives the 20 layers of ResNet-20).

LabMLP (one input, one output, for the shattered-gradients experiment of Balduzzi et al. 2017): a linear
layer to ``width`` units, ``blocks`` fully connected blocks, and a linear read-out. Its blocks are
pre-activation by default (h' = h + W2 act(BN(W1 act(BN(h)))), He et al. 2016): the identity path carries no
non-linearity, as in the residual networks Balduzzi et al. analyse; ``preact=False`` gives the blocks above.

Initialisation: ``kaiming`` (normal, std sqrt(2 / fan_in): keeps the forward signal's scale through ReLUs),
``xavier`` (normal, std sqrt(2 / (fan_in + fan_out))), or ``normal`` with a given ``std``. Biases start at 0.
"""
import math

import numpy as np

from .. import functional as F
from ..errors import ArgumentError
from ..nn import BatchNorm2d, Conv2d, Identity, Linear, Module, Sequential, init
from ..rng import as_generator

ACTIVATIONS = {"relu": F.relu, "tanh": F.tanh, "sigmoid": F.sigmoid}
INITS = ("kaiming", "xavier", "normal")


def initialise(weight, scheme, std, rng):
    if scheme == "kaiming":
        init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu", rng=rng)
    elif scheme == "xavier":
        init.xavier_normal_(weight, rng=rng)
    elif scheme == "normal":
        if std is None or std <= 0:
            raise ArgumentError("init 'normal' needs a positive std")
        init.normal_(weight, 0.0, std, rng=rng)
    else:
        raise ArgumentError(f"unknown init {scheme!r}; known: {', '.join(INITS)}")


def kaiming_std(fan_in):
    return math.sqrt(2.0 / fan_in)


class LabBlock(Module):
    def __init__(self, layer, width, residual, batch_norm, activation, rng, preact=False):
        super().__init__()
        self.residual, self.activation, self.preact = residual, activation, preact
        self.conv1 = layer(width, width, rng)
        self.bn1 = BatchNorm2d(width) if batch_norm else Identity()
        self.conv2 = layer(width, width, rng)
        self.bn2 = BatchNorm2d(width) if batch_norm else Identity()

    def forward(self, h):                                 # h: (N, width, ...)
        act = ACTIVATIONS[self.activation]
        if self.preact:                                   # BN -> act -> layer, twice; nothing after the join
            branch = self.conv2(act(self.bn2(self.conv1(act(self.bn1(h))))))
            return h + branch if self.residual else branch
        branch = self.bn2(self.conv2(act(self.bn1(self.conv1(h)))))  # F(h)
        if not self.residual:
            return act(branch)                            # plain: h' = act(F(h))
        if self.activation == "relu":
            return F.residual_add(branch, h, relu=True)   # h' = relu(F(h) + h), one fused kernel
        return act(branch + h)                            # h' = act(F(h) + h)


def _conv(c_in, c_out, rng):
    return Conv2d(c_in, c_out, 3, padding=1, bias=False, rng=rng)


def _linear(c_in, c_out, rng):
    return Linear(c_in, c_out, bias=False, rng=rng)


class _LabBase(Module):
    def _initialise(self, init_scheme, std, rng):
        for module in self.modules():
            if isinstance(module, (Conv2d, Linear)):
                initialise(module.weight, init_scheme, std, rng)
                if module.bias is not None:
                    init.constant_(module.bias, 0.0)

    def weighted_layers(self):
        """(name, module) of every convolution and linear layer, from input to output."""
        return [(n, m) for n, m in self.named_modules() if isinstance(m, (Conv2d, Linear))]


class LabNet(_LabBase):
    def __init__(self, blocks, residual=True, batch_norm=True, activation="relu", init_scheme="kaiming", std=None,
                 width=16, in_channels=1, num_classes=10, seed=0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ArgumentError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        rng = as_generator(np.random.default_rng(seed))
        self.activation = activation
        self.stem = _conv(in_channels, width, rng)
        self.stem_bn = BatchNorm2d(width) if batch_norm else Identity()
        self.blocks = Sequential(*[LabBlock(_conv, width, residual, batch_norm, activation, rng)
                                   for _ in range(blocks)])
        self.fc = Linear(width, num_classes, rng=rng)
        self._initialise(init_scheme, std, rng)

    def forward(self, x):                                 # (N, C, H, W)
        h = ACTIVATIONS[self.activation](self.stem_bn(self.stem(x)))
        h = self.blocks(h)                                # (N, width, H, W)
        return self.fc(F.flatten(F.global_avg_pool2d(h), 1))  # (N, classes)


class LabMLP(_LabBase):
    def __init__(self, blocks, residual=True, batch_norm=True, activation="relu", init_scheme="kaiming", std=None,
                 width=200, preact=True, seed=0):
        super().__init__()
        rng = as_generator(np.random.default_rng(seed))
        self.activation, self.preact = activation, preact
        self.inp = Linear(1, width, bias=False, rng=rng)
        self.blocks = Sequential(*[LabBlock(_linear, width, residual, batch_norm, activation, rng, preact)
                                   for _ in range(blocks)])
        self.out = Linear(width, 1, bias=False, rng=rng)
        self._initialise(init_scheme, std, rng)

    def forward(self, x):                                 # (N, 1)
        h = self.inp(x)
        if not self.preact:
            h = ACTIVATIONS[self.activation](h)
        return self.out(self.blocks(h))                   # (N, 1)
