"""SyncBatchNorm and convert_sync_batchnorm, as torch's: batch-norm whose training statistics are the whole
global batch's across the ranks of a data-parallel run (F.sync_batch_norm). With one process it computes
what BatchNorm2d does. Why and when it matters: docs/tutorial.md, "Data parallelism and batch-norm"."""
from .. import functional as F
from ..errors import ArgumentError
from ..grad_mode import no_grad
from .layers import BatchNorm2d


class SyncBatchNorm(BatchNorm2d):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None, *, bias=True, world=None):
        if not track_running_stats or process_group is not None or momentum is None:
            raise ArgumentError("SyncBatchNorm: minires does not implement track_running_stats=False, momentum=None "
                                "or process_group= yet (the ranks of minires.distributed are the group)")
        super().__init__(num_features, eps, momentum, affine, device=device, dtype=dtype, bias=bias)
        self.world = world  # None: minires.distributed's world of this process

    def forward(self, x, residual=None, relu=False):
        """BN(x) with global statistics; with ``relu=True``, ReLU(BN(x) + residual) (as BatchNorm2d's)."""
        if self.training:
            self.num_batches_tracked.array += 1
        y = F.sync_batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, self.training,
                              self.momentum, self.eps, world=self.world)
        if relu:
            return F.relu(y) if residual is None else F.residual_add(y, residual, relu=True)
        if residual is not None:
            raise ArgumentError("SyncBatchNorm: a residual is added only before a fused ReLU (relu=True)")
        return y


def convert_sync_batchnorm(module, world=None):
    """Every BatchNorm2d in ``module`` replaced by a SyncBatchNorm holding the same parameters and running
    statistics (the tensors themselves, so an optimiser built before still updates them); returns the
    module (or the replacement, when ``module`` is itself a BatchNorm2d)."""
    if type(module) is BatchNorm2d:
        replacement = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine, world=world)
        with no_grad():
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    setattr(replacement, name, getattr(module, name))
            for name, buffer in module._buffers.items():
                replacement._buffers[name] = buffer
        replacement.train(module.training)
        return replacement
    for name, child in list(module.named_children()):
        converted = convert_sync_batchnorm(child, world)
        if converted is not child:
            setattr(module, name, converted)
    return module
