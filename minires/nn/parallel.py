"""``minires.nn.parallel.DataParallel`` (also ``nn.DataParallel``): torch's single-process wrapper that
splits a batch over the GPUs of one machine. minires runs a module on one device, so the wrapper runs it as
it is; it keeps what scripts rely on: ``.module``, and state_dict keys prefixed "module." (a checkpoint saved
through it loads back through it, as in torch). For data parallelism across processes see minires.distributed.
"""
from .module import Module


class DataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module
        self.device_ids, self.output_device, self.dim = device_ids, output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
