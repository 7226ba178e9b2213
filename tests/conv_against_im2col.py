"""The one comparison every direct-convolution test makes: the direct kernels (channels-last memory,
float32) against the im2col convolution in float64, forward values and both gradients under a random
upstream gradient."""
import numpy as np

import minires as mr
from minires import F, kernels


def im2col_conv(x, weight, g, stride, padding):
    """y, dx, dW of the im2col convolution in float64 (the reference the direct kernels must equal)."""
    xt = mr.tensor(x.astype(np.float64), requires_grad=True)
    wt = mr.tensor(weight.astype(np.float64), requires_grad=True)
    y = F.conv2d(xt, wt, None, stride, padding)
    assert type(y.grad_fn).__name__ == "Conv2d"
    y.backward(mr.tensor(g.astype(np.float64)))
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy()


def direct_conv(x, weight, g, stride, padding, weight_channels_last=False):
    xt = mr.tensor(x, requires_grad=True).contiguous(memory_format=mr.channels_last)
    xt.retain_grad()
    wt = mr.tensor(weight, requires_grad=True)
    if weight_channels_last:  # dW then lands in channels-last memory (weight_grad_cl for small layers)
        wt = wt.detach().contiguous(memory_format=mr.channels_last).requires_grad_()
    y = F.conv2d(xt, wt, None, stride, padding)
    ran_direct = y.grad_fn.saved_tensors[0].backward is kernels.direct.conv2d_backward  # (freed by backward)
    y.backward(mr.tensor(g).contiguous(memory_format=mr.channels_last))
    if not xt.is_contiguous():  # one channel or one pixel: the memory is NCHW as much as NHWC
        assert ran_direct
        assert y.is_contiguous(memory_format=mr.channels_last)
        assert xt.grad.is_contiguous(memory_format=mr.channels_last)
    assert wt.grad.array.strides == wt.array.strides  # a gradient is laid out like its weight
    return y.numpy(), xt.grad.numpy(), wt.grad.numpy()


def assert_close_to_reference(ours, reference):
    """float32 sums against float64 ones: a tolerance relative to the largest value, growing slowly with the
    number of values (the worst of many rounding errors)."""
    scale = np.abs(reference).max() + 1e-12
    np.testing.assert_allclose(ours, reference, rtol=0, atol=2e-6 * scale * max(1, np.sqrt(reference.size) / 64))


def random_layer(rng, batch, channels, out_channels, size, kernel, stride, padding):
    """x, weight and an upstream gradient of the output's shape, float32 standard normals."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = size, kernel, stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    x = rng.standard_normal((batch, channels, h, w)).astype(np.float32)
    weight = rng.standard_normal((out_channels, channels, kh, kw)).astype(np.float32)
    return x, weight, rng.standard_normal((batch, out_channels, oh, ow)).astype(np.float32)


def check_direct_conv(x, weight, g, stride, padding, weight_channels_last=False):
    for ours, reference in zip(direct_conv(x, weight, g, stride, padding, weight_channels_last),
                               im2col_conv(x, weight, g, stride, padding)):
        assert_close_to_reference(ours, reference)
