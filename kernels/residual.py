"""The residual join y = out + shortcut (then ReLU), and the parameter-free option-A shortcut.

Fused: forward reads both branches once and writes y once; backward writes one gradient array that both
branches receive (d y / d out = d y / d shortcut = 1, masked by the ReLU when there is one) — the gradient
"splits" at the join without being scaled: dL/dx = dL/dy (dF/dx + I).

Option A (He et al. 2015, the common CIFAR reference code): subsample the image by the stride, then pad the
channel axis with zeros, split evenly before and after: C -> C_out adds (C_out - C) // 2 zero channels in front
and the rest behind.

Signatures (both flavours):
    residual_add_forward(out, shortcut, relu) -> y
    residual_add_backward(g, y, relu) -> grad (for both branches)
    shortcut_a_forward(x, out_channels, sh, sw) -> y
    shortcut_a_backward(g, in_channels, h, w, sh, sw) -> dx
    relu_backward(g, y) -> grad         (the join's backward with the ReLU: F.relu's backward too)
    shortcut_a_forward_channels_last / shortcut_a_backward_channels_last: the same on (N, H, W, C) memory
Elementwise kernels read their arrays' memory flat, so they serve NCHW and channels-last arrays alike.
The CUDA versions are kernels/cuda/residual.cu, launched by kernels/cuda/residual.py.
"""
import numpy as np

from minires.backend import get_array_module

from .jit import parallel_jit, prange, serial_jit


def shortcut_a_channels(in_channels, out_channels):
    """Zero channels added (before, after) by option A."""
    extra = out_channels - in_channels
    return extra // 2, extra - extra // 2


# --- NumPy reference ------------------------------------------------------------------------------

def residual_add_forward_reference(out, shortcut, relu):
    xp = get_array_module(out)
    y = out + shortcut
    return xp.maximum(y, 0, out=y) if relu else y


def residual_add_backward_reference(g, y, relu):
    # As F.relu and torch: exactly 0 where y <= 0; a NaN output passes its gradient (NaN never hidden).
    return get_array_module(g).where(y <= 0, 0, g) if relu else g


def shortcut_a_forward_reference(x, out_channels, sh, sw):
    xp = get_array_module(x)
    before, after = shortcut_a_channels(x.shape[1], out_channels)
    sub = x[:, :, ::sh, ::sw]  # (N, C, ceil(H/SH), ceil(W/SW))
    return xp.pad(sub, ((0, 0), (before, after), (0, 0), (0, 0)))  # (N, C_out, ceil(H/SH), ceil(W/SW))


def shortcut_a_backward_reference(g, in_channels, h, w, sh, sw):
    xp = get_array_module(g)
    before, _ = shortcut_a_channels(in_channels, g.shape[1])
    dx = xp.zeros((g.shape[0], in_channels, h, w), dtype=g.dtype)
    dx[:, :, ::sh, ::sw] = g[:, before:before + in_channels]  # padded channels had no input
    return dx


def shortcut_a_forward_channels_last_reference(x, out_channels, sh, sw):
    """The same on channels-last memory: x (N, H, W, C) -> (N, ceil(H/SH), ceil(W/SW), C_out)."""
    xp = get_array_module(x)
    before, after = shortcut_a_channels(x.shape[3], out_channels)
    return xp.pad(x[:, ::sh, ::sw], ((0, 0), (0, 0), (0, 0), (before, after)))


def shortcut_a_backward_channels_last_reference(g, in_channels, h, w, sh, sw):
    xp = get_array_module(g)
    before, _ = shortcut_a_channels(in_channels, g.shape[3])
    dx = xp.zeros((g.shape[0], h, w, in_channels), dtype=g.dtype)
    dx[:, ::sh, ::sw] = g[..., before:before + in_channels]
    return dx


# --- numba ------------------------------------------------------------------------------------------

def residual_add_forward_loops(out, shortcut, relu):
    out, shortcut = np.ascontiguousarray(out), np.ascontiguousarray(shortcut)
    y = np.empty_like(out)
    flat_out, flat_short, flat_y = out.reshape(-1), shortcut.reshape(-1), y.reshape(-1)
    for k in prange(flat_y.size):
        v = flat_out[k] + flat_short[k]
        flat_y[k] = 0 if (relu and v <= 0) else v  # NaN stays NaN, as xp.maximum(v, 0) keeps it
    return y


def residual_add_backward_loops(g, y, relu):
    g = np.ascontiguousarray(g)
    grad = np.empty_like(g)
    flat_g, flat_y, flat_grad = g.reshape(-1), np.ascontiguousarray(y).reshape(-1), grad.reshape(-1)
    for k in prange(flat_grad.size):
        flat_grad[k] = 0 if (relu and flat_y[k] <= 0) else flat_g[k]
    return grad


def shortcut_a_forward_loops(x, out_channels, sh, sw):
    x = np.ascontiguousarray(x)
    n, c, h, w = x.shape
    before, _ = shortcut_a_channels(c, out_channels)
    oh, ow = -(-h // sh), -(-w // sw)
    y = np.empty((n, out_channels, oh, ow), dtype=x.dtype)
    for plane in prange(n * out_channels):
        b, ch = plane // out_channels, plane % out_channels
        source = ch - before
        for row in range(oh):
            for column in range(ow):
                if 0 <= source < c:
                    y[b, ch, row, column] = x[b, source, row * sh, column * sw]
                else:
                    y[b, ch, row, column] = 0
    return y


def shortcut_a_backward_loops(g, in_channels, h, w, sh, sw):
    g = np.ascontiguousarray(g)
    n, c_out, oh, ow = g.shape
    before, _ = shortcut_a_channels(in_channels, c_out)
    dx = np.empty((n, in_channels, h, w), dtype=g.dtype)
    for plane in prange(n * in_channels):
        b, ch = plane // in_channels, plane % in_channels
        for row in range(h):
            for column in range(w):
                dx[b, ch, row, column] = 0
        for row in range(oh):
            for column in range(ow):
                dx[b, ch, row * sh, column * sw] = g[b, ch + before, row, column]
    return dx


shortcut_a_channels = serial_jit(shortcut_a_channels) or shortcut_a_channels  # the kernels call it
residual_add_forward_numba = parallel_jit(residual_add_forward_loops)
residual_add_backward_numba = parallel_jit(residual_add_backward_loops)
shortcut_a_forward_numba = parallel_jit(shortcut_a_forward_loops)
shortcut_a_backward_numba = parallel_jit(shortcut_a_backward_loops)


def relu_backward_reference(g, y):
    return residual_add_backward_reference(g, y, True)  # the join's backward with the ReLU, nothing added


def _relu_backward_loops(g, y):
    return residual_add_backward_numba(g, y, True)


relu_backward_numba = _relu_backward_loops if residual_add_backward_numba else None

# channels-last: two strided copies, which NumPy does at memory speed; no loops to compile
