"""The residual join and the option-A shortcut, each one fused kernel forward and backward.

A residual block computes y = F(x, {W_i}) + x (or + W_s x): ``residual_add(F(x), shortcut, relu=True)`` adds
the two branches and applies the block's final ReLU in one pass. Its backward hands the same gradient to both
branches (masked by the ReLU): the gradient flows to x along the shortcut unchanged, and the engine adds it
to what comes back through F.
"""
from .. import kernels
from ..errors import ShapeError
from ..function import Function
from .window import check_nchw, pair


class ResidualAdd(Function):
    """Elementwise, on the arrays' memory as it is (the output keeps the layout of ``out``)."""
    name = "residual_add"

    def forward(self, out, shortcut, relu):
        y = kernels.residual_add_forward(out, shortcut, relu)     # y = out + shortcut (then ReLU)
        self.relu = relu
        self.save_for_backward(y if relu else None)
        return y

    def backward(self, g):
        (y,) = self.saved_tensors
        # dy/dout = dy/dshortcut = I, masked by the ReLU when there is one
        if self.relu:
            g = kernels.residual_add_backward(g, y)
        need_out, need_shortcut = self.needs_input_grad
        return g if need_out else None, g if need_shortcut else None


class ShortcutA(Function):
    name = "shortcut_a"

    def forward(self, x, out_channels, stride):
        y, saved = kernels.shortcut_a_forward(x, out_channels, stride)
        self.save_for_backward(saved)
        return y

    def backward(self, g):
        (saved,) = self.saved_tensors
        return kernels.shortcut_a_backward(saved, g)


def residual_add(out, shortcut, relu=False):
    """y = out + shortcut, then ReLU when ``relu``: the join of a residual block. Shapes must be equal."""
    if tuple(out.shape) != tuple(shortcut.shape):
        raise ShapeError(f"residual_add: the residual branch has shape {tuple(out.shape)} but the shortcut has "
                         f"{tuple(shortcut.shape)}; they must be equal (use a projection or option-A shortcut)")
    return ResidualAdd.apply(out, shortcut, relu=bool(relu))


def shortcut_a(x, out_channels, stride):
    """Option A: x[:, :, ::SH, ::SW], then zero channels up to out_channels (split before/after); stride is an
    int or an (SH, SW) pair."""
    check_nchw("shortcut_a", x)
    stride = pair("shortcut_a", "stride", stride, 1)
    if out_channels < x.shape[1]:
        raise ShapeError(f"shortcut_a: out_channels ({out_channels}) must be at least the input's channels "
                         f"({x.shape[1]})")
    return ShortcutA.apply(x, out_channels=int(out_channels), stride=stride)
