"""batch_norm_relu: y = ReLU(batch_norm(x) + residual), the tail of a residual block's branch and its join
as one op. On channels-last memory it is one fused kernel pair (kernels/batchnorm_relu_channels_last.py:
two passes forward, two backward, instead of six each way), on the GPU likewise (kernels/batchnorm_relu.py);
on NCHW memory on the CPU it is the three ops it stands for. The values and gradients are the same either way (the reference kernels *are* the composition).
"""
from .. import backend, kernels
from ..errors import ShapeError
from ..function import Function
from ..memory_format import from_pixel_matrix, only_channels_last, pixel_matrix
from .batchnorm import affine, batch_norm, checked_arguments, evaluation_statistics
from .pointwise import relu
from .residual import residual_add


class BatchNormReLU(Function):
    name = "batch_norm_relu"
    fresh_input_grads = True  # dx, dgamma, dbeta and the residual's gm: new arrays each

    def forward(self, x, weight, bias, residual, running_mean, running_var, training, momentum, eps):
        xp = backend.get_array_module(x)
        self.shape, self.training = x.shape, training
        self.channels_last = only_channels_last(x)
        self.family = "batchnorm_relu_channels_last_" if self.channels_last else "batchnorm_relu_"
        x2, r2 = self._view(x), None if residual is None else self._view(residual)  # (P, C) or (N, C, M)
        gamma, beta = affine(weight, bias, x)
        if training:
            running = (running_mean, running_var, momentum)  # updated in place by the kernel
            y, mean, var, inv_std = kernels.pick(self.family + "forward_train", xp)(x2, gamma, beta, eps, r2,
                                                                                   running=running)
        else:
            mean, var, inv_std = evaluation_statistics(running_mean, running_var, eps)
            y = kernels.pick(self.family + "forward_eval", xp)(x2, gamma, beta, mean, var, eps, r2)
        self.save_for_backward(x2, y, gamma, mean, inv_std)
        return self._unview(y)

    def backward(self, g):
        x2, y, gamma, mean, inv_std = self.saved_tensors
        xp = backend.get_array_module(g)
        kernel = kernels.pick(self.family + "backward" + ("" if self.training else "_eval"), xp)
        _, need_w, need_b, need_residual = self.needs_input_grad
        dx, dgamma, dbeta, gm = kernel(self._view(g), y, x2, gamma, mean, inv_std, need_residual)
        return (self._unview(dx), dgamma if need_w else None, dbeta if need_b else None,
                self._unview(gm) if need_residual else None)  # the join hands gm to the shortcut

    def _view(self, a):
        return pixel_matrix(a) if self.channels_last else a.reshape(*self.shape[:2], -1)

    def _unview(self, a2):
        return from_pixel_matrix(a2, self.shape) if self.channels_last else a2.reshape(self.shape)


def batch_norm_relu(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5, residual=None):
    """ReLU(batch_norm(x) + residual), or ReLU(batch_norm(x)) without a residual; batch_norm's arguments and
    running-statistics rules. Fused into one op on channels-last (N, C, H, W) memory."""
    stats = checked_arguments("batch_norm_relu", x, weight, bias, running_mean, running_var, training)
    if residual is not None and tuple(residual.shape) != tuple(x.shape):
        raise ShapeError(f"batch_norm_relu: the residual has shape {tuple(residual.shape)} but the input has "
                         f"{tuple(x.shape)}; they must be equal")
    if only_channels_last(x.data) or kernels.cuda_in_force(backend.get_array_module(x.data)):
        return BatchNormReLU.apply(x, weight, bias, residual, running_mean=stats[0], running_var=stats[1],
                                   training=bool(training), momentum=float(momentum), eps=float(eps))
    y = batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps)
    return relu(y) if residual is None else residual_add(y, residual, relu=True)
