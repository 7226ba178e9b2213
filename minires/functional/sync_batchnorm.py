"""sync_batch_norm: batch normalisation whose statistics are those of the whole global batch, gathered from
every rank of a data-parallel run (torch's SyncBatchNorm). Per channel c, with the sums over every rank:
    forward:   K = sum of counts,  mean = sum(x) / K,  var = sum(x^2) / K - mean^2   (one allreduce of
               [sum(x), sum(x^2), count]), then y = (x - mean) inv_std gamma + beta as batch_norm
    backward:  dbeta = sum(g), dgamma = sum(g x_hat) over all ranks (one allreduce), then
               dx = gamma inv_std / K (K g - dbeta - x_hat dgamma)          (batch_norm's three-term form)
The parameter gradients it returns are this rank's own sums: DistributedDataParallel averages them with the
other ranks' like any gradient. Running statistics move with the global mean and unbiased variance. With one
process it is batch_norm computed through the sums (float64 sums, so equal to 1e-12 in float64).
"""
from .. import backend, kernels
from ..function import Function
from .batchnorm import affine, checked_arguments


class SyncBatchNorm(Function):
    name = "sync_batch_norm"
    fresh_input_grads = True

    def forward(self, x, weight, bias, running_mean, running_var, momentum, eps, world):
        xp = backend.get_array_module(x)
        c, axes = x.shape[1], (0,) + tuple(range(2, x.ndim))
        shape = (1, c) + (1,) * (x.ndim - 2)
        sums = xp.concatenate([x.sum(axis=axes, dtype=xp.float64), (x.astype(xp.float64) ** 2).sum(axis=axes),
                               xp.full(1, x.size // c, dtype=xp.float64)])
        world.all_reduce(sums)
        count = sums[-1]
        mean = sums[:c] / count
        var = xp.maximum(sums[c:2 * c] / count - mean * mean, 0)   # biased; rounding must not make it negative
        inv_std = 1 / xp.sqrt(var + eps)
        gamma, beta = affine(weight, bias, x)
        x_hat = (x - mean.astype(x.dtype).reshape(shape)) * inv_std.astype(x.dtype).reshape(shape)
        y = x_hat * gamma.reshape(shape) + beta.reshape(shape)
        kernels.batch_norm_update_running((running_mean, running_var, momentum), mean.astype(x.dtype),
                                          var.astype(x.dtype), count)
        self.save_for_backward(x_hat, gamma, inv_std.astype(x.dtype), count)
        self.world, self.shape, self.axes = world, shape, axes
        return y

    def backward(self, g):
        x_hat, gamma, inv_std, count = self.saved_tensors
        xp = backend.get_array_module(g)
        c = g.shape[1]
        local = xp.concatenate([g.sum(axis=self.axes, dtype=xp.float64),
                                (g * x_hat).sum(axis=self.axes, dtype=xp.float64)])
        dbeta, dgamma = local[:c].astype(g.dtype), local[c:].astype(g.dtype)   # this rank's: DDP averages them
        total = self.world.all_reduce(local.copy())
        s = (gamma * inv_std / count.astype(g.dtype)).reshape(self.shape)
        dx = s * (count.astype(g.dtype) * g - total[:c].astype(g.dtype).reshape(self.shape)
                  - x_hat * total[c:].astype(g.dtype).reshape(self.shape))
        _, need_w, need_b = self.needs_input_grad
        return dx.astype(g.dtype, copy=False), dgamma if need_w else None, dbeta if need_b else None


def sync_batch_norm(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5, world=None):
    """batch_norm with the global batch's statistics in training (see the module docstring); in evaluation
    it is batch_norm itself. ``world``: minires.distributed's (default: this process's)."""
    from ..distributed.world import world as default_world
    from .batchnorm import batch_norm
    if not training:
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps)
    stats = checked_arguments("sync_batch_norm", x, weight, bias, running_mean, running_var, training)
    return SyncBatchNorm.apply(x, weight, bias, running_mean=stats[0], running_var=stats[1], momentum=float(momentum),
                               eps=float(eps), world=world or default_world())
