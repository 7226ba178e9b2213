"""Run by tests/test_distributed.py as ``mpiexec -n W python distributed_run.py MODE OUT`` (or directly, one
process): three SGD steps of a float64 ResNet-20 on a fixed global batch of 32 (8x8 images), each rank
taking its contiguous share, written to OUT.rank<r>.npz: the weights and running statistics afterwards.

MODE: sync (nn.convert_sync_batchnorm: the global batch's statistics), per_rank (plain batch-norm, each rank
its own statistics), overlap (the sync run, also logging each backward op next to DDP's events), fault
(rank 1 raises during its second step), no_sync (a small net without batch-norm: the gradients of two
micro-batches per rank, the first inside no_sync(), written after the second backward), nccl (all_reduce and
broadcast of CuPy arrays: a GPU per rank)."""
import sys

import numpy as np

import minires as mr
from minires import F, distributed, models, nn, op_hooks, optim

GLOBAL_BATCH, STEPS = 32, 3


def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((GLOBAL_BATCH, 3, 8, 8)), rng.integers(0, 10, GLOBAL_BATCH)


def small_net():
    rng = np.random.default_rng(5)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 10, rng=rng)).double()


def accumulated_gradients(world):
    """Two micro-batches per rank, the first backward inside no_sync(): .grad afterwards."""
    model = distributed.DistributedDataParallel(small_net(), world=world)
    images, labels = data()
    share = GLOBAL_BATCH // world.size
    for micro in range(2):
        rows = slice(world.rank * share + micro * share // 2, world.rank * share + (micro + 1) * share // 2)
        loss = F.cross_entropy(model(mr.tensor(images[rows])), labels[rows])
        if micro == 0:
            with model.no_sync():
                loss.backward()
        else:
            loss.backward()
    return {name: p.grad.numpy() for name, p in model.module.named_parameters()}


def main(mode, out):
    world = distributed.world()
    if mode == "nccl":  # the collectives on CuPy arrays (NCCL), one GPU per rank
        summed = world.all_reduce(mr.backend.to_device(np.full(5, world.rank + 1.0), "cuda"))
        shared = world.broadcast(mr.backend.to_device(np.full(3, float(world.rank)), "cuda"), root=1)
        np.savez(f"{out}.rank{world.rank}.npz", summed=summed.get(), shared=shared.get())
        return
    if mode == "no_sync":
        np.savez(f"{out}.rank{world.rank}.npz", **accumulated_gradients(world))
        return
    model = models.get("resnet20", num_classes=10, seed=world.rank).double()  # DDP broadcasts rank 0's
    if mode in ("sync", "overlap", "fault"):
        model = nn.convert_sync_batchnorm(model)
    model = distributed.DistributedDataParallel(model, bucket_cap_mb=0.25)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    images, labels = data()
    share = GLOBAL_BATCH // world.size
    mine = slice(world.rank * share, (world.rank + 1) * share)
    for step in range(STEPS):
        if mode == "fault" and step == 1 and world.rank == 1:
            raise RuntimeError("an injected fault on rank 1")
        logged = mode == "overlap" and step == STEPS - 1
        model.events.clear()
        loss = F.cross_entropy(model(mr.tensor(images[mine])), labels[mine])
        optimizer.zero_grad()
        with op_hooks.registered(_logger(model.events) if logged else _quiet):
            loss.backward()
        optimizer.step()
    state = {k: v.numpy() for k, v in model.module.state_dict().items() if not k.endswith("num_batches_tracked")}
    if mode == "overlap":
        state["events"] = np.array([f"{kind}: {detail}" for kind, detail in model.events])
    np.savez(f"{out}.rank{world.rank}.npz", **state)


def _logger(log):
    """An op hook that appends ("backward", op name) to ``log`` as each op's backward finishes."""
    def hook(fn, phase, inputs, work):
        result = work()
        if phase == "backward":
            log.append(("backward", fn.op_name()))
        return result
    return hook


def _quiet(fn, phase, inputs, work):
    return work()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
