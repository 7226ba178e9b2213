"""DistributedDataParallel, with torch's semantics: a replica per rank, gradients averaged across ranks by
the time ``loss.backward()`` returns.

    model = DistributedDataParallel(model)     # rank 0's parameters and buffers broadcast to every rank
    loss = F.cross_entropy(model(x_shard), y_shard); loss.backward()   # .grad averaged over the ranks
    optimizer.step()

The gradients travel in buckets: the parameters, in reverse order of registration (about the order backward
finishes them), are grouped into flat buffers of at most ``bucket_cap_mb``. When backward has accumulated
the last gradient of a bucket (a post-accumulate hook on each parameter), the bucket is copied into its
buffer and its allreduce starts without waiting (MPI's Iallreduce), so the communication of late layers
overlaps the backward of early ones. The last bucket's hook waits for all of them, divides by the world
size and writes the averages back into .grad. ``events`` logs each bucket's start and the final wait in
order, which tests and profiles read.

``with model.no_sync():`` skips the communication for gradient accumulation: .grad just sums, and the next
backward outside the block averages the sum. Every parameter must take part in every synchronised backward
(as torch's default, find_unused_parameters=False): a bucket left incomplete is an error at the next forward.
Buffers (batch-norm running statistics) are broadcast from rank 0 before each forward, as torch's
broadcast_buffers=True.
"""
import contextlib
import time

from .. import backend
from ..errors import ArgumentError, AutogradError
from ..grad_mode import no_grad
from ..nn.module import Module
from .world import world as default_world


class _Bucket:
    def __init__(self, index, params):
        self.index, self.params = index, params
        self.buffer = self.request = None
        self.ready = set()

    def add(self, param):
        """Note that ``param``'s gradient is complete; True when the whole bucket is."""
        self.ready.add(id(param))
        return len(self.ready) == len(self.params)

    def start(self, world):
        xp = backend.get_array_module(self.params[0].grad.array)
        self.buffer = xp.concatenate([p.grad.array.ravel() for p in self.params])
        self.request = world.start_all_reduce(self.buffer)

    def finish(self, size):
        self.request.wait()
        self.buffer /= size
        offset = 0
        with no_grad():
            for p in self.params:
                p.grad.array[...] = self.buffer[offset:offset + p.numel()].reshape(p.shape)
                offset += p.numel()
        self.ready, self.buffer, self.request = set(), None, None


class DistributedDataParallel(Module):
    def __init__(self, module, bucket_cap_mb=25.0, world=None):
        super().__init__()
        if bucket_cap_mb <= 0:
            raise ArgumentError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module, self.world = module, world or default_world()
        self.events = []
        self.communication_seconds = 0.0  # spent starting and waiting for the allreduces (benchmarks read it)
        self._synchronising = True
        params = [p for p in module.parameters() if p.requires_grad]
        if len({p.dtype for p in params}) > 1:
            raise ArgumentError("DistributedDataParallel: the parameters must share one dtype (one flat buffer "
                                "per bucket)")
        self._broadcast(params + list(module.buffers()))  # rank 0's initial weights everywhere
        self.buckets, self._bucket_of = [], {}
        for group in _groups(list(reversed(params)), bucket_cap_mb * 2**20):
            bucket = _Bucket(len(self.buckets), group)
            self.buckets.append(bucket)
            for p in group:
                self._bucket_of[id(p)] = bucket
                p.register_post_accumulate_grad_hook(self._gradient_ready)
        self._started = 0

    def forward(self, *args, **kwargs):
        if self._started or any(b.ready for b in self.buckets):
            waiting = [name for name, p in self.module.named_parameters()
                       if id(p) in self._bucket_of and id(p) not in self._bucket_of[id(p)].ready]
            raise AutogradError("DistributedDataParallel: the last backward did not reach every parameter, so its "
                                "gradients were not averaged; parameters without a gradient: "
                                f"{', '.join(waiting[:8]) or '?'}. Every parameter must take part in the loss.")
        if self.training and self.world.size > 1:
            self._broadcast(self.module.buffers())
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward inside the block accumulates .grad locally; the next one outside averages the sum."""
        previous, self._synchronising = self._synchronising, False
        try:
            yield
        finally:
            self._synchronising = previous

    def _gradient_ready(self, param):
        if not self._synchronising or self.world.size == 1:
            return
        bucket = self._bucket_of[id(param)]
        if bucket.add(param):
            started = time.perf_counter()
            self.events.append(("allreduce started", bucket.index))
            bucket.start(self.world)
            self._started += 1
            if self._started == len(self.buckets):
                for b in self.buckets:
                    b.finish(self.world.size)
                self.events.append(("allreduce finished", len(self.buckets)))
                self._started = 0
            self.communication_seconds += time.perf_counter() - started

    def _broadcast(self, tensors):
        """Rank 0's values of ``tensors`` on every rank, in place (the one-value counters are host bookkeeping
        each rank keeps)."""
        with no_grad():
            for tensor in tensors:
                data = tensor.array
                if not data.ndim:
                    continue
                if data.flags.c_contiguous:
                    self.world.broadcast(data)
                else:  # a channels-last weight: MPI sends C-ordered buffers
                    data[...] = self.world.broadcast(backend.get_array_module(data).ascontiguousarray(data))


def _groups(params, cap_bytes):
    """Consecutive groups of ``params`` of at most ``cap_bytes`` each (a larger parameter alone)."""
    groups, current, size = [], [], 0
    for p in params:
        nbytes = p.array.nbytes
        if current and size + nbytes > cap_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(p)
        size += nbytes
    return groups + ([current] if current else [])
