"""Launch code for residual.cu, with the signatures of kernels/residual.py's references (its cuda slots)."""
from minires.backend import get_array_module

from ..residual import shortcut_a_channels
from .modules import launch


def residual_add_forward(out, shortcut, relu):
    xp = get_array_module(out)
    out, shortcut = xp.ascontiguousarray(out), xp.ascontiguousarray(shortcut)
    y = xp.empty_like(out)
    launch("residual", "residual_add_forward", y.dtype, y.size, (out, shortcut, y, y.size, int(relu)))
    return y


def relu_backward(g, y):
    xp = get_array_module(g)
    g, y = xp.ascontiguousarray(g), xp.ascontiguousarray(y)
    grad = xp.empty_like(g)
    launch("residual", "relu_backward", g.dtype, g.size, (g, y, grad, g.size))
    return grad


def residual_add_backward(g, y, relu):
    return relu_backward(g, y) if relu else g  # without the ReLU the gradient passes unchanged


def _shortcut(kernel, source, shape, geometry):
    xp = get_array_module(source)
    source = xp.ascontiguousarray(source)
    result = xp.empty(shape, dtype=source.dtype)
    launch("residual", kernel, source.dtype, result.size, (source, result, *geometry))
    return result


def _option_a(n, c, h, w, out_channels, sh, sw):
    """The kernels' geometry arguments: n, c, h, w, co, oh, ow, sh, sw and the zero channels in front."""
    return n, c, h, w, out_channels, -(-h // sh), -(-w // sw), sh, sw, shortcut_a_channels(c, out_channels)[0]


def shortcut_a_forward(x, out_channels, sh, sw):
    geometry = _option_a(*x.shape, out_channels, sh, sw)
    return _shortcut("shortcut_a_forward", x, (x.shape[0], out_channels, *geometry[5:7]), geometry)


def shortcut_a_backward(g, in_channels, h, w, sh, sw):
    geometry = _option_a(g.shape[0], in_channels, h, w, g.shape[1], sh, sw)
    return _shortcut("shortcut_a_backward", g, (g.shape[0], in_channels, h, w), geometry)


def shortcut_a_forward_channels_last(x, out_channels, sh, sw):
    n, h, w, c = x.shape
    geometry = _option_a(n, c, h, w, out_channels, sh, sw)
    return _shortcut("shortcut_a_forward_channels_last", x, (n, *geometry[5:7], out_channels), geometry)


def shortcut_a_backward_channels_last(g, in_channels, h, w, sh, sw):
    geometry = _option_a(g.shape[0], in_channels, h, w, g.shape[3], sh, sw)
    return _shortcut("shortcut_a_backward_channels_last", g, (g.shape[0], h, w, in_channels), geometry)
