"""The layers a ResNet is built from, as modules around minires.functional."""
import numpy as np

from .. import functional as F, kernels, memory_format
from ..errors import ArgumentError
from ..functional.operands import not_implemented
from ..functional.window import check_groups, pair
from ..rng import as_generator
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """2-D convolution; weight (out_channels, in_channels/groups, KH, KW), PyTorch's default init."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, rng=None):
        super().__init__()
        not_implemented("Conv2d", padding_mode=(padding_mode, "zeros"))
        check_groups("Conv2d", groups, in_channels, out_channels)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride, self.dilation = pair("Conv2d", "stride", stride, 1), pair("Conv2d", "dilation", dilation, 1)
        self.padding = padding if isinstance(padding, str) else pair("Conv2d", "padding", padding, 0)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, np.float32))
        self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
        init.torch_default_(self.weight, self.bias, rng=as_generator(rng))
        # channels-last memory where the fast kernels want it (kernels.conv2d_weight_format); shape unchanged
        self.weight.array = memory_format.to_format(self.weight.array, kernels.conv2d_weight_format(np.float32))
        if dtype is not None or device is not None:
            self.to(device, dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self):
        extra = f", stride={self.stride}" if self.stride != (1, 1) else ""
        extra += f", padding={self.padding!r}" if self.padding != (0, 0) else ""
        extra += f", dilation={self.dilation}" if self.dilation != (1, 1) else ""
        extra += f", groups={self.groups}" if self.groups != 1 else ""
        extra += ", bias=False" if self.bias is None else ""
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}{extra}"


class BatchNorm2d(Module):
    """Batch normalisation over channels with running statistics (PyTorch's conventions)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        if momentum is not None and not 0 <= momentum <= 1:
            raise ArgumentError(f"BatchNorm2d: momentum must be in [0, 1] or None (cumulative average), got "
                                f"{momentum!r}")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        self.track_running_stats = track_running_stats
        self.weight = Parameter(np.ones(num_features, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, np.float32)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, np.float32))
            self.register_buffer("running_var", np.ones(num_features, np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        if dtype is not None or device is not None:
            self.to(device, dtype)

    def forward(self, x, residual=None, relu=False):
        """BN(x); with ``relu=True``, ReLU(BN(x) + residual) as one fused op (F.batch_norm_relu)."""
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array += 1
            if momentum is None:  # torch: a cumulative moving average over the batches seen so far
                momentum = 1.0 / float(self.num_batches_tracked.array)
        # without running statistics (track_running_stats=False) batch statistics are used in evaluation too
        training = self.training or not self.track_running_stats
        mean, var = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        if relu:
            return F.batch_norm_relu(x, self.weight, self.bias, mean, var, training, momentum, self.eps,
                                     residual=residual)
        if residual is not None:
            raise ArgumentError("BatchNorm2d: a residual is added only before a fused ReLU (relu=True)")
        return F.batch_norm(x, mean, var, self.weight, self.bias, training, momentum, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class Linear(Module):
    """y = x W^T + b with W (out_features, in_features); PyTorch's default init."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *, rng=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        self.bias = Parameter(np.empty(out_features, np.float32)) if bias else None
        init.torch_default_(self.weight, self.bias, rng=as_generator(rng))
        if dtype is not None or device is not None:
            self.to(device, dtype)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class ReLU(Module):
    """max(x, 0); ``inplace=True`` overwrites its input, as torch (see minires/inplace.py)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        not_implemented("MaxPool2d", dilation=(dilation, 1), return_indices=(return_indices, False),
                        ceil_mode=(ceil_mode, False))
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        not_implemented("AvgPool2d", ceil_mode=(ceil_mode, False), count_include_pad=(count_include_pad, True),
                        divisor_override=(divisor_override, None))
        super().__init__(kernel_size, stride, padding)

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

    def __init__(self, p=0.5, inplace=False, *, generator=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ArgumentError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p, self.inplace = p, inplace
        self.generator = as_generator(generator) if generator is not None else None

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.inplace, generator=self.generator)

    def extra_repr(self):
        return f"p={self.p}"


class CrossEntropyLoss(Module):
    """F.cross_entropy as a module: loss(logits (N, C), target (N,))."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__()
        not_implemented("CrossEntropyLoss", weight=(weight, None))
        from ..functional.loss import legacy_reduction
        self.reduction, self.label_smoothing = legacy_reduction(size_average, reduce, reduction), label_smoothing
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.cross_entropy(input, target, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)

    def extra_repr(self):
        smoothing = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return f"reduction={self.reduction!r}{smoothing}"


class MSELoss(Module):
    """F.mse_loss as a module: mean (or sum, or none) of (input - target)^2."""

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        from ..functional.loss import legacy_reduction
        self.reduction = legacy_reduction(size_average, reduce, reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"
