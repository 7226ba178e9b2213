"""batch_norm_relu: y = ReLU(batch_norm(x) + residual), the tail of a residual block's branch and its join
as one op. On channels-last memory it is one fused kernel pair (kernels/batchnorm_relu_channels_last.py:
two passes forward, two backward, instead of six each way); on NCHW memory it is the three ops it stands
for. The values and gradients are the same either way (the reference kernels *are* the composition).
"""
from .. import backend, kernels
from ..errors import ShapeError
from ..function import Function
from ..memory_format import from_pixel_matrix, only_channels_last, pixel_matrix
from ..kernels.batchnorm import update_running
from .batchnorm import affine, batch_norm, checked_arguments, evaluation_statistics
from .pointwise import relu
from .residual import residual_add


class BatchNormReLU(Function):
    name = "batch_norm_relu"

    def forward(self, x, weight, bias, residual, running_mean, running_var, training, momentum, eps):
        xp = backend.get_array_module(x)
        self.shape, self.training = x.shape, training
        x2 = pixel_matrix(x)                                          # (P, C)
        r2 = None if residual is None else pixel_matrix(residual)
        gamma, beta = affine(weight, bias, x)
        if training:
            kernel = kernels.pick("batchnorm_relu_channels_last_forward_train", xp)
            y, mean, var, inv_std = kernel(x2, gamma, beta, eps, r2)
            update_running(running_mean, running_var, mean, var, x2.shape[0], momentum)
        else:
            mean, var, inv_std = evaluation_statistics(running_mean, running_var, eps)
            y = kernels.pick("batchnorm_relu_channels_last_forward_eval", xp)(x2, gamma, beta, mean, var, eps, r2)
        self.save_for_backward(x2, y, gamma, mean, inv_std)
        return from_pixel_matrix(y, self.shape)

    def backward(self, g):
        x2, y, gamma, mean, inv_std = self.saved_tensors
        xp = backend.get_array_module(g)
        kernel = kernels.pick("batchnorm_relu_channels_last_backward" + ("" if self.training else "_eval"), xp)
        _, need_w, need_b, need_residual = self.needs_input_grad
        dx, dgamma, dbeta, gm = kernel(pixel_matrix(g), y, x2, gamma, mean, inv_std, need_residual)
        return (from_pixel_matrix(dx, self.shape), dgamma if need_w else None, dbeta if need_b else None,
                from_pixel_matrix(gm, self.shape) if need_residual else None)  # the join hands gm to the shortcut


def batch_norm_relu(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5, residual=None):
    """ReLU(batch_norm(x) + residual), or ReLU(batch_norm(x)) without a residual; batch_norm's arguments and
    running-statistics rules. Fused into one op on channels-last (N, C, H, W) memory."""
    stats = checked_arguments("batch_norm_relu", x, weight, bias, running_mean, running_var, training)
    if residual is not None and tuple(residual.shape) != tuple(x.shape):
        raise ShapeError(f"batch_norm_relu: the residual has shape {tuple(residual.shape)} but the input has "
                         f"{tuple(x.shape)}; they must be equal")
    if only_channels_last(x.data):
        return BatchNormReLU.apply(x, weight, bias, residual, running_mean=stats[0], running_var=stats[1],
                                   training=bool(training), momentum=float(momentum), eps=float(eps))
    y = batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps)
    return relu(y) if residual is None else residual_add(y, residual, relu=True)
