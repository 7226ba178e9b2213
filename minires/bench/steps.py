"""One training step of each engine on the same network, weights and batch, and their median times.

A training step is forward, cross-entropy, backward and an SGD step (momentum 0.9, weight decay 5e-4) on a
fixed random batch, float32. PyTorch runs an identical architecture from minires.verify.torch_reference.
minires runs in channels-last memory by default (its fast CPU convolutions want it; ``memory_format=
"contiguous_format"`` times the NCHW im2col path); PyTorch runs in its default NCHW format, the one its
users get.
"""
import contextlib
import statistics
import time

import numpy as np

from .. import functional as F
from .. import models, nn, optim
from ..memory_format import channels_last
from ..tensor import Tensor
from ..allocator import keep_freed_memory
from ..threads import one_pool

CLASSES = 10


def minires_step(name, batch, size, seed=0, memory_format=channels_last, wrap=None):
    """A closure running one minires training step; ``step(profile)`` also times the optimiser step in a
    minires.bench.profiler profile. ``wrap(model)`` is what the step calls instead of the model itself (a
    DistributedDataParallel replica)."""
    model = models.get(name, num_classes=CLASSES, seed=seed).to(memory_format=memory_format)
    nn.fuse(model)  # batch-norm + ReLU (+ join) as one op where a block allows it: as minires train runs
    runner = model if wrap is None else wrap(model)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(seed)
    images = Tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32)).contiguous(memory_format)
    labels = rng.integers(0, CLASSES, batch)

    def step(profile=None):
        with one_pool():  # as in training: numba's thread pool alone (minires.threads)
            optimizer.zero_grad()
            loss = F.cross_entropy(runner(images), labels)
            loss.backward()
            with profile.timed("SGD.step", "update") if profile else contextlib.nullcontext():
                optimizer.step()
            return loss.item()
    return step, model


def torch_step(name, batch, size, seed=0, weights=None):
    import torch

    from ..verify import torch_reference

    model = torch_reference.build(name, num_classes=CLASSES)
    if weights is not None:
        model.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in weights.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, CLASSES, batch))

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def time_pair(name, batch, size, repeats=3, warmup=1, memory_format=channels_last):
    """Median seconds per training step for minires and torch, alternating."""
    ours, model = minires_step(name, batch, size, memory_format=memory_format)
    theirs = torch_step(name, batch, size, weights=model.state_dict())
    with keep_freed_memory():  # as in training, for both engines (minires.allocator)
        return alternating_medians({"minires": ours, "torch": theirs}, repeats, warmup)


def alternating_medians(steps, repeats, warmup):
    """{engine: median seconds of its step}, the engines' steps alternating, after ``warmup`` untimed rounds."""
    samples = {engine: [] for engine in steps}
    for i in range(warmup + repeats):
        for engine, step in steps.items():
            start = time.perf_counter()
            step()
            if i >= warmup:
                samples[engine].append(time.perf_counter() - start)
    return {engine: statistics.median(values) for engine, values in samples.items()}
