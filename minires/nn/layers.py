"""The layers a ResNet is built from, as modules around minires.functional."""
import numpy as np

from .. import functional as F, kernels, memory_format
from ..errors import ArgumentError
from ..functional.window import check_groups, pair
from ..rng import as_generator
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """2-D convolution; weight (out_channels, in_channels/groups, KH, KW), PyTorch's default init."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, rng=None):
        super().__init__()
        check_groups("Conv2d", groups, in_channels, out_channels)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride, self.dilation = pair("Conv2d", "stride", stride, 1), pair("Conv2d", "dilation", dilation, 1)
        self.padding = pair("Conv2d", "padding", padding, 0)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, np.float32))
        self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
        init.torch_default_(self.weight, self.bias, rng=as_generator(rng))
        # channels-last memory where the fast kernels want it (kernels.conv2d_weight_format); shape unchanged
        self.weight.data = memory_format.to_format(self.weight.data, kernels.conv2d_weight_format(np.float32))

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        extra = f", stride={self.stride}" if self.stride != (1, 1) else ""
        extra += f", padding={self.padding}" if self.padding != (0, 0) else ""
        extra += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        extra += f", groups={self.groups}" if self.groups != 1 else ""
        extra += ", bias=False" if self.bias is None else ""
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}{extra}"


class BatchNorm2d(Module):
    """Batch normalisation over channels with running statistics (PyTorch's conventions)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.weight = Parameter(np.ones(num_features, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, np.float32)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))
        self.register_buffer("num_batches_tracked", np.array(0, np.int64))

    def forward(self, x, residual=None, relu=False):
        """BN(x); with ``relu=True``, ReLU(BN(x) + residual) as one fused op (F.batch_norm_relu)."""
        if self.training:
            self.num_batches_tracked.data += 1
        args = (x, self.weight, self.bias, self.running_mean, self.running_var, self.training, self.momentum, self.eps)
        if relu:
            return F.batch_norm_relu(*args, residual=residual)
        if residual is not None:
            raise ArgumentError("BatchNorm2d: a residual is added only before a fused ReLU (relu=True)")
        return F.batch_norm(*args)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class Linear(Module):
    """y = x W^T + b with W (out_features, in_features); PyTorch's default init."""

    def __init__(self, in_features, out_features, bias=True, rng=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        self.bias = Parameter(np.empty(out_features, np.float32)) if bias else None
        init.torch_default_(self.weight, self.bias, rng=as_generator(rng))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)


class Identity(Module):
    def forward(self, x):
        return x


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ... as in PyTorch."""

    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        return Sequential(*modules[index]) if isinstance(index, slice) else modules[index]

    def __setitem__(self, index, module):
        """Replace the module at ``index`` (as torch.nn.Sequential does); its name stays "0", "1", ..."""
        names = list(self._modules)
        self.add_module(names[index], module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class Dropout(Module):
    """Zero each element with probability p in training (survivors scaled by 1 / (1 - p)); the identity in
    evaluation. Masks come from ``generator`` (a seed or numpy Generator) or the default generator."""

    def __init__(self, p=0.5, generator=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ArgumentError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p, self.generator = p, as_generator(generator) if generator is not None else None

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self):
        return f"p={self.p}"


class CrossEntropyLoss(Module):
    """F.cross_entropy as a module: loss(logits (N, C), target (N,))."""

    def __init__(self, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.reduction, self.label_smoothing = reduction, label_smoothing

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, self.reduction, self.label_smoothing)

    def extra_repr(self):
        smoothing = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return f"reduction={self.reduction!r}{smoothing}"


class MSELoss(Module):
    """F.mse_loss as a module: mean (or sum, or none) of (input - target)^2."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
