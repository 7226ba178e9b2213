"""Lazy layers (``LazyConv2d``, ``LazyBatchNorm2d``, ``LazyLinear``): the input size is read from the first
input, as torch's lazy modules do (d2l builds its networks this way). On that first call the layer makes its
parameters and becomes the ordinary layer (its class changes to Conv2d, BatchNorm2d or Linear, as in torch);
until then it has no parameters, so run one batch through the network before making the optimiser."""
from ..errors import ShapeError
from .layers import BatchNorm2d, Conv2d, Linear
from .module import Module


class LazyModule(Module):
    becomes = None  # the layer class this one turns into

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._lazy_args, self._lazy_kwargs = args, kwargs
        self._lazy_dtype = self._lazy_device = None

    def astype(self, dtype):
        """Remembered until the parameters exist (torch's .double() on a lazy module does the same)."""
        self._lazy_dtype = dtype
        return self

    def to(self, *args, **kwargs):
        from ..dtypes import to_arguments
        device, dtype, _ = to_arguments("Module", args, dict(kwargs))
        self._lazy_device = device or self._lazy_device
        self._lazy_dtype = dtype or self._lazy_dtype
        return self

    def forward(self, x, *rest, **kwargs):
        if x.ndim < 2:
            raise ShapeError(f"{type(self).__name__}: cannot infer the input size from a tensor of shape "
                             f"{tuple(x.shape)}")
        made = self.becomes(self.input_size(x), *self._lazy_args, **self._lazy_kwargs)
        for registry in ("_parameters", "_buffers"):
            getattr(self, registry).update(getattr(made, registry))
        extra = {k: v for k, v in made.__dict__.items() if not k.startswith("_") and k != "training"}
        self.__dict__.update(extra)
        dtype, device = self._lazy_dtype, self._lazy_device
        del self._lazy_args, self._lazy_kwargs, self._lazy_dtype, self._lazy_device
        self.__class__ = self.becomes  # from now on an ordinary layer (hooks and training mode kept)
        if dtype is not None or device is not None:
            self.to(device, dtype)
        if not self.training:
            self.eval()
        return self.forward(x, *rest, **kwargs)

    def input_size(self, x):
        return x.shape[1]  # channels (N, C, ...) or features (N, F)


class LazyConv2d(LazyModule):
    becomes = Conv2d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode, device,
                         dtype)

    def extra_repr(self):
        return f"0, {self._lazy_args[0] if self._lazy_args else ''} (input size inferred at the first call)"


class LazyBatchNorm2d(LazyModule):
    becomes = BatchNorm2d

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *,
                 bias=True):
        super().__init__(eps, momentum, affine, track_running_stats, device, dtype, bias=bias)


class LazyLinear(LazyModule):
    becomes = Linear

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        super().__init__(out_features, bias, device, dtype)

    def input_size(self, x):
        return x.shape[-1]
