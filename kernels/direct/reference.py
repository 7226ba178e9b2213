"""The direct convolution written plainly: loops over output pixel, output channel and tap, no register
blocks, no padding buffers, no generated code. fast.py must agree with it (tests/test_direct_conv.py), and a
reader can check fast.py's sums against these lines. Same signatures and memory as fast.py:
x (N, H, W, C), gy (N, OH, OW, OC), weight (OC, C, KH, KW); zero padding (PH, PW) on each side.

    forward      y[n, oy, ox, o]   = sum_{i,j,c} x[n, oy SH + i - PH, ox SW + j - PW, c] w[o, c, i, j]
    weight_grad  dw[o, c, i, j]    = sum_{n,oy,ox} x[n, oy SH + i - PH, ox SW + j - PW, c] gy[n, oy, ox, o]
    input_grad   dx[n, oy SH + i - PH, ox SW + j - PW, c] += sum_o gy[n, oy, ox, o] w[o, c, i, j]
(terms whose input pixel falls in the padding are zero). The innermost sum over channels is one NumPy dot
product per tap, so the tests can afford a few small images; nothing here is meant to be fast.
"""
import numpy as np


def output_size(size, kernel, stride, padding):
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, padding))


def _taps(oy, ox, kernel, stride, padding, size):
    """(i, j, y, x) for each tap of output pixel (oy, ox) whose input pixel (y, x) lies inside the image."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            y, x = oy * stride[0] + i - padding[0], ox * stride[1] + j - padding[1]
            if 0 <= y < size[0] and 0 <= x < size[1]:
                yield i, j, y, x


def forward(x, weight, stride, padding):
    n, size, kernel = x.shape[0], x.shape[1:3], weight.shape[2:]
    out = output_size(size, kernel, stride, padding)
    y = np.zeros((n, *out, weight.shape[0]), dtype=x.dtype)
    for b in range(n):
        for oy in range(out[0]):
            for ox in range(out[1]):
                for i, j, iy, ix in _taps(oy, ox, kernel, stride, padding, size):
                    y[b, oy, ox] += weight[:, :, i, j] @ x[b, iy, ix]          # (OC, C) @ (C,)
    return y


def weight_grad(x, gy, kernel, stride, padding, channels_last=False):
    grad = np.zeros((gy.shape[-1], x.shape[-1], *kernel), dtype=x.dtype)
    for b in range(x.shape[0]):
        for oy in range(gy.shape[1]):
            for ox in range(gy.shape[2]):
                for i, j, iy, ix in _taps(oy, ox, kernel, stride, padding, x.shape[1:3]):
                    grad[:, :, i, j] += np.outer(gy[b, oy, ox], x[b, iy, ix])   # (OC,) x (C,)
    if channels_last:  # laid out like a channels-last weight, as fast.py returns it
        return np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return grad


def input_grad(gy, weight, stride, padding, in_size):
    dx = np.zeros((gy.shape[0], *in_size, weight.shape[1]), dtype=gy.dtype)
    for b in range(gy.shape[0]):
        for oy in range(gy.shape[1]):
            for ox in range(gy.shape[2]):
                for i, j, iy, ix in _taps(oy, ox, weight.shape[2:], stride, padding, in_size):
                    dx[b, iy, ix] += gy[b, oy, ox] @ weight[:, :, i, j]       # (OC,) @ (OC, C)
    return dx
