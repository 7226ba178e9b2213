"""batch_norm_relu: y = ReLU(batch_norm(x) + residual), the tail of a residual block's branch and its join
as one op. On channels-last memory it is one fused kernel pair (kernels/batchnorm_relu_channels_last.py:
two passes forward, two backward, instead of six each way), on the GPU likewise (kernels/batchnorm_relu.py);
on NCHW memory on the CPU it is the three ops it stands for. The values and gradients are the same either way (the reference kernels *are* the composition).
"""
from .. import kernels
from ..errors import ShapeError
from ..function import Function
from .batchnorm import affine, batch_norm, checked_arguments
from .pointwise import relu
from .residual import residual_add


class BatchNormReLU(Function):
    """y = relu(batch_norm(x) + residual) as one kernel pair."""
    name = "batch_norm_relu"
    fresh_input_grads = True  # dx, dgamma, dbeta and the residual's gm: new arrays each

    def forward(self, x, weight, bias, residual, running_mean, running_var, training, momentum, eps):
        gamma, beta = affine(weight, bias, x)
        y, saved = kernels.batch_norm_relu_forward(x, gamma, beta, eps, training,
                                                   (running_mean, running_var, momentum), residual)
        self.save_for_backward(saved)
        return y

    def backward(self, g):
        (saved,) = self.saved_tensors
        _, need_w, need_b, need_residual = self.needs_input_grad
        dx, dgamma, dbeta, gm = kernels.batch_norm_relu_backward(saved, g, need_residual)
        return dx, dgamma if need_w else None, dbeta if need_b else None, gm  # the join hands gm to the shortcut


def batch_norm_relu(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5, residual=None):
    """ReLU(batch_norm(x) + residual), or ReLU(batch_norm(x)) without a residual; batch_norm's arguments and
    running-statistics rules. Fused into one op on channels-last (N, C, H, W) memory."""
    stats = checked_arguments("batch_norm_relu", x, weight, bias, running_mean, running_var, training)
    if residual is not None and tuple(residual.shape) != tuple(x.shape):
        raise ShapeError(f"batch_norm_relu: the residual has shape {tuple(residual.shape)} but the input has "
                         f"{tuple(x.shape)}; they must be equal")
    if kernels.fuses_batch_norm_relu(x.array):
        return BatchNormReLU.apply(x, weight, bias, residual, running_mean=stats[0], running_var=stats[1],
                                   training=bool(training), momentum=float(momentum), eps=float(eps))
    y = batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    return relu(y) if residual is None else residual_add(y, residual, relu=True)
