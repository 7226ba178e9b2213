"""Residual blocks (He et al. 2015, 2016) — the place to read a residual network.

A residual block computes

    y = F(x, {W_i}) + W_s x

where F is a small stack of conv-BN-ReLU layers (the *residual branch*) and W_s x is the *shortcut*:
    option A  x itself, or where the shape changes, x subsampled by the stride and zero-padded to the new
              channel count (no parameters);
    option B  x itself, or where the shape changes, a projection: 1x1 convolution (with the stride) + BN;
    option C  a projection in every block;
    None      no shortcut at all: y = F(x). The same layers as a "plain" network, for comparison.

Backward needs no code here: the engine differentiates the forward below. At the join the gradient splits,
    dL/dx = dL/dy · (dF/dx + W_s)      (W_s = I for an identity shortcut),
so a layer deep in the network always receives dL/dy through the shortcut, however small dF/dx is.
`minires explain` walks this step by step and checks it numerically.

Shapes below use N for the batch, C_in/C_out for channels, H x W for the input size and s for the stride.
Key names follow torchvision (conv1, bn1, conv2, bn2, [conv3, bn3,] downsample.0 / downsample.1), so weights
load straight from PyTorch.
"""
from .. import functional as F, op_hooks
from ..errors import ArgumentError
from ..functional.window import pair
from .layers import BatchNorm2d, Conv2d, Identity, ReLU, Sequential
from .module import Module

SHORTCUTS = ("A", "B", "C", None)


class OptionAShortcut(Module):
    """W_s x for option A: x[:, :, ::s, ::s], then zero channels up to C_out (half before, half after)."""

    def __init__(self, out_channels, stride):
        super().__init__()
        self.out_channels, self.stride = out_channels, pair("shortcut_a", "stride", stride, 1)

    def forward(self, x):  # (N, C_in, H, W) -> (N, C_out, H/s, W/s)
        return F.shortcut_a(x, self.out_channels, self.stride)

    def extra_repr(self):
        return f"out_channels={self.out_channels}, stride={self.stride}"


class ResidualJoin(Module):
    """The join y = out + W_s x (then ReLU for a post-activation block), one fused kernel each way. A child of
    every block with a shortcut, so that a tool can replace it (the lesion study routes gradients through it)."""

    def __init__(self, relu):
        super().__init__()
        self.relu = relu

    def forward(self, out, shortcut):  # both (N, C_out, H/s, W/s)
        return F.residual_add(out, shortcut, relu=self.relu)

    def extra_repr(self):
        return f"relu={self.relu}"


def make_shortcut(kind, in_channels, out_channels, stride, rng=None, batch_norm=True):
    """The shortcut module W_s for a block, or None for a plain block (see the module docstring)."""
    if kind not in SHORTCUTS:
        raise ArgumentError(f"shortcut must be one of {SHORTCUTS}, got {kind!r}")
    if kind is None:
        return None
    reshapes = stride != 1 or in_channels != out_channels
    if kind == "C" or (kind == "B" and reshapes):
        conv = Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, rng=rng)
        return Sequential(conv, BatchNorm2d(out_channels)) if batch_norm else Sequential(conv)
    if kind == "A" and reshapes:
        return OptionAShortcut(out_channels, stride)
    return Identity()


def _conv3x3(in_channels, out_channels, stride, rng):
    return Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False, rng=rng)


def _conv1x1(in_channels, out_channels, rng, stride=1):
    return Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, rng=rng)


def bn_relu(bn, x):
    """relu(bn(x)) as one op (F.batch_norm_relu with the BatchNorm2d ``bn``'s parameters and statistics)."""
    return bn(x, relu=True)


def bn_add_relu(bn, x, shortcut):
    """y = relu(bn(x) + shortcut): a residual branch's last batch-norm, the join and the block's ReLU as one op
    (F.batch_norm_relu), the same values and gradients as the three ops; the shortcut receives the gradient
    that reaches the join, as with ResidualJoin."""
    return bn(x, residual=shortcut, relu=True)


class BasicBlock(Module):
    """Two 3x3 convolutions: F(x) = BN(conv(ReLU(BN(conv(x))))), y = ReLU(F(x) + W_s x).

    ``fused=True`` (the default; ``nn.fuse(model, False)`` or ``fused=False`` turns it off) computes the same
    values and gradients with each batch-norm and the ReLU (and join) after it as one op (bn_relu,
    bn_add_relu): two passes over memory each way instead of six (a ResNet-20 training step in the plain
    PyTorch-style loop, 2-core AVX2: 0.60 s unfused, 0.43 s fused, issue 28). The fused form runs only where
    nothing can tell: a block runs unfused while ``bn1``, ``bn2``, ``relu`` or ``join`` has a hook or has been
    replaced (the lesion study), or an op hook asks for every op (op_hooks, parity), so hooks always see
    the ops of the equations above."""
    expansion = 1

    def __init__(self, in_channels, planes, stride=1, shortcut="B", rng=None, fused=True):
        super().__init__()
        self.fused = fused
        out_channels = planes * self.expansion
        self.conv1 = _conv3x3(in_channels, planes, stride, rng)
        self.bn1 = BatchNorm2d(planes)
        self.relu = ReLU()
        self.conv2 = _conv3x3(planes, out_channels, 1, rng)
        self.bn2 = BatchNorm2d(out_channels)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, rng)
        self.join = None if self.downsample is None else ResidualJoin(relu=True)

    def forward(self, x):                                          # x: (N, C_in, H, W)
        if self.fused and not self._observed():
            return self.forward_fused(x)
        out = self.relu(self.bn1(self.conv1(x)))                   # (N, C_out, H/s, W/s)
        out = self.bn2(self.conv2(out))                            # F(x, {W_i}): (N, C_out, H/s, W/s)
        if self.downsample is None:                                # plain block: y = ReLU(F(x))
            return self.relu(out)
        return self.join(out, self.downsample(x))                  # y = ReLU(F(x, {W_i}) + W_s x)

    def forward_fused(self, x):
        out = bn_relu(self.bn1, self.conv1(x))                     # ReLU(BN(conv(x))), one op
        if self.downsample is None:
            return bn_relu(self.bn2, self.conv2(out))              # plain block: y = ReLU(F(x)), one op
        return bn_add_relu(self.bn2, self.conv2(out), self.downsample(x))  # y = ReLU(F(x, {W_i}) + W_s x), one op


    def _observed(self):
        """Whether anything would see the difference between the fused and the unfused forward."""
        return (_hooked(self.bn1, self.bn2, self.relu, self.join) or op_hooks.every_op_watched()
                or type(self.relu) is not ReLU or not isinstance(self.bn1, BatchNorm2d)  # SyncBatchNorm fuses too
                or not isinstance(self.bn2, BatchNorm2d)
                or (self.join is not None and type(self.join) is not ResidualJoin))


def _hooked(*modules):
    """Whether any of the modules (None: absent) has a forward, pre-forward or backward hook."""
    return any(m is not None and (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks) for m in modules)


class Bottleneck(Module):
    """1x1 (reduce) -> 3x3 (with the stride, as torchvision's v1.5) -> 1x1 (expand x4), then the join."""
    expansion = 4

    def __init__(self, in_channels, planes, stride=1, shortcut="B", rng=None):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = _conv1x1(in_channels, planes, rng)
        self.bn1 = BatchNorm2d(planes)
        self.relu = ReLU()
        self.conv2 = _conv3x3(planes, planes, stride, rng)
        self.bn2 = BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, out_channels, rng)
        self.bn3 = BatchNorm2d(out_channels)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, rng)
        self.join = None if self.downsample is None else ResidualJoin(relu=True)

    def forward(self, x):                                          # x: (N, C_in, H, W)
        out = self.relu(self.bn1(self.conv1(x)))                   # (N, planes, H, W)
        out = self.relu(self.bn2(self.conv2(out)))                 # (N, planes, H/s, W/s)
        out = self.bn3(self.conv3(out))                            # F(x, {W_i}): (N, 4 planes, H/s, W/s)
        if self.downsample is None:
            return self.relu(out)
        return self.join(out, self.downsample(x))                  # y = ReLU(F(x, {W_i}) + W_s x)


class PreActBasicBlock(Module):
    """Pre-activation (He et al. 2016): BN -> ReLU -> conv, twice; y = F(x) + W_s x with nothing after the
    join, so an identity shortcut carries x to the next block unchanged. A projection (B, C) is a 1x1
    convolution applied to the pre-activated input; option A subsamples x itself."""
    expansion = 1

    def __init__(self, in_channels, planes, stride=1, shortcut="B", rng=None):
        super().__init__()
        out_channels = planes * self.expansion
        self.bn1 = BatchNorm2d(in_channels)
        self.relu = ReLU()
        self.conv1 = _conv3x3(in_channels, planes, stride, rng)
        self.bn2 = BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, out_channels, 1, rng)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, rng, batch_norm=False)
        self.join = None if self.downsample is None else ResidualJoin(relu=False)

    def forward(self, x):                                          # x: (N, C_in, H, W)
        pre = self.relu(self.bn1(x))                               # (N, C_in, H, W)
        out = self.conv1(pre)                                      # (N, C_out, H/s, W/s)
        out = self.conv2(self.relu(self.bn2(out)))                 # F(x, {W_i}): (N, C_out, H/s, W/s)
        if self.downsample is None:
            return out
        return self.join(out, _preact_shortcut(self.downsample, x, pre))  # y = F(x, {W_i}) + W_s x


class PreActBottleneck(Module):
    """Pre-activation bottleneck: (BN -> ReLU -> conv) for 1x1, 3x3 (stride), 1x1 (x4); y = F(x) + W_s x."""
    expansion = 4

    def __init__(self, in_channels, planes, stride=1, shortcut="B", rng=None):
        super().__init__()
        out_channels = planes * self.expansion
        self.bn1 = BatchNorm2d(in_channels)
        self.relu = ReLU()
        self.conv1 = _conv1x1(in_channels, planes, rng)
        self.bn2 = BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride, rng)
        self.bn3 = BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, out_channels, rng)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, rng, batch_norm=False)
        self.join = None if self.downsample is None else ResidualJoin(relu=False)

    def forward(self, x):                                          # x: (N, C_in, H, W)
        pre = self.relu(self.bn1(x))                               # (N, C_in, H, W)
        out = self.conv1(pre)                                      # (N, planes, H, W)
        out = self.conv2(self.relu(self.bn2(out)))                 # (N, planes, H/s, W/s)
        out = self.conv3(self.relu(self.bn3(out)))                 # F(x, {W_i}): (N, 4 planes, H/s, W/s)
        if self.downsample is None:
            return out
        return self.join(out, _preact_shortcut(self.downsample, x, pre))  # y = F(x, {W_i}) + W_s x


def _preact_shortcut(downsample, x, pre):
    """Identity and option A take x itself; a projection takes the pre-activated input."""
    return downsample(pre) if isinstance(downsample, Sequential) else downsample(x)


def fuse(model, fused=True):
    """Switch every BasicBlock of ``model`` to its fused form (BasicBlock's docstring) or back; returns it."""
    for module in model.modules():
        if isinstance(module, BasicBlock):
            module.fused = fused
    return model
