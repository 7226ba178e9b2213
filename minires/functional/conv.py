"""conv2d: 2-D convolution (cross-correlation, as in PyTorch).

Notation: input x (N, C, H, W), weight W (OC, C/G, KH, KW) for G groups, output y (N, OC, OH, OW) with
    OH = floor((H + 2 PH - DH (KH - 1) - 1) / SH) + 1       (kernels.im2col.conv_out_size; OW likewise)
    y[n, o] = sum_{c, i, j} W[o, c, i, j] x_padded[n, c, oy SH + i DH, ox SW + j DW] + b[o]
Backward, with gy = dL/dy:
    dW = sum over n and output pixels of gy x (the windows),   dx = the windows' W^T gy added back,
    db = sum of gy over N, OH, OW.
The reference computes it as im2col + one matrix product per image (kernels/im2col.py: y[n] = W @ col[n]);
kernels.conv2d_forward says which implementation runs (direct SIMD kernels on channels-last memory, im2col,
one GEMM for the batch on the GPU).
"""
from .. import kernels
from ..errors import ArgumentError, ShapeError
from ..function import Function
from ..tensor import Tensor
from .conversion import contiguous
from .window import check_groups, check_nchw, sliding_window


class Conv2d(Function):
    name = "conv2d"
    fresh_input_grads = True  # dx, dW, db: new arrays (views of new arrays at most)

    def forward(self, x, weight, bias, window, groups):
        y, saved = kernels.conv2d_forward(x, weight, bias, window, groups)    # y = W * x + b
        self.save_for_backward(saved)
        return y

    def backward(self, g):
        (saved,) = self.saved_tensors
        return kernels.conv2d_backward(saved, g, self.needs_input_grad)      # dx, dW, db


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in PyTorch) of x (N, C, H, W) with weight (OC, C/groups, KH, KW).

    Output (N, OC, OH, OW), OH = floor((H + 2 padding - dilation (KH - 1) - 1) / stride) + 1, likewise OW.
    stride, padding and dilation are ints or (height, width) pairs; padding may also be "valid" (none) or
    "same" (stride 1: the output keeps the input's size), as torch.
    """
    x = input
    if isinstance(padding, str):
        padding = _named_padding(padding, weight, stride, dilation)
    op = "conv2d"
    check_nchw(op, x)
    check_nchw(op, weight, "weight")
    channels, out_channels = x.shape[1], weight.shape[0]
    check_groups(op, groups, channels, out_channels)
    if weight.shape[1] * groups != channels:
        raise ShapeError(f"conv2d: the input has {channels} channels but the weight {tuple(weight.shape)} with "
                         f"groups={groups} expects {weight.shape[1] * groups}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ShapeError(f"conv2d: bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    window = sliding_window(op, x.shape, weight.shape[2:], stride, padding, dilation)
    if isinstance(x, Tensor) and isinstance(weight, Tensor):
        memory_format = kernels.conv2d_input_format(x.array, weight.array, window, groups)
        if memory_format is not None:
            x = contiguous(x, memory_format)  # a channels-last weight pulls x over, as an op of its own
    return Conv2d.apply(x, weight, bias, window=window, groups=groups)


def _named_padding(name, weight, stride, dilation):
    if name == "valid":
        return 0
    if name != "same":
        raise ArgumentError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {name!r}")
    if stride not in (1, (1, 1)):
        raise ArgumentError("conv2d: padding='same' needs stride 1 (as in torch)")
    dilation = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    spans = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
    if any(span % 2 for span in spans):
        raise ArgumentError("conv2d: minires does not implement padding='same' with an even kernel span yet "
                            "(torch pads it unevenly)")
    return tuple(span // 2 for span in spans)
