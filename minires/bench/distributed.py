"""``minires bench --distributed``: a data-parallel training step against one process on the same machine.

The parent process times the single-process step (all the machine's threads), then starts ``mpiexec -n R``
ranks with threads / R numba threads each, every rank running this module's worker: the same global batch
split across the ranks, DistributedDataParallel averaging the gradients. Reported: each setting's median
step seconds, the allreduce seconds per step (DDP's time starting buckets and waiting for them: the part of
communication that backward did not hide) and the scaling efficiency, single-process step time over the
distributed one at the same total cores (1.0: no loss from splitting the work).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from .. import distributed
from ..errors import DistributedError, MissingDependencyError
from .steps import minires_step


def worker(name, batch, size, repeats, warmup):
    """One rank's part (run under mpiexec): prints rank 0's medians as one JSON line."""
    world = distributed.world()
    replicas = []
    step, _ = minires_step(name, batch // world.size, size, seed=world.rank,
                           wrap=lambda model: replicas.append(distributed.DistributedDataParallel(model, world=world))
                           or replicas[-1])
    replica = replicas[0]
    times, communication = [], []
    for i in range(warmup + repeats):
        world.barrier()
        replica.communication_seconds, started = 0.0, time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - started)
            communication.append(replica.communication_seconds)
    if world.rank == 0:
        print(json.dumps({"ranks": world.size, "step": statistics.median(times),
                          "allreduce": statistics.median(communication)}))


def scaling(name, batch, size, ranks, repeats, warmup):
    """(single-process row, distributed row) dicts: step seconds, allreduce seconds, threads per rank."""
    if shutil.which("mpiexec") is None:
        raise MissingDependencyError("minires bench --distributed needs mpiexec and mpi4py: "
                                     "pip install 'minires-nn[mpi]'")
    cores = len(os.sched_getaffinity(0))
    step, _ = minires_step(name, batch, size)
    times = []
    for i in range(warmup + repeats):
        started = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    single = {"ranks": 1, "threads": cores, "step": statistics.median(times), "allreduce": 0.0}
    environment = dict(os.environ, NUMBA_NUM_THREADS=str(max(1, cores // ranks)), OMP_NUM_THREADS="1")
    result = subprocess.run(["mpiexec", "-n", str(ranks), sys.executable, "-m", __name__, name, str(batch), str(size),
                             str(repeats), str(warmup)], capture_output=True, text=True, env=environment)
    if result.returncode:
        raise DistributedError(f"the distributed benchmark failed:\n{result.stderr[-2000:]}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["threads"] = max(1, cores // ranks)
    return single, row


if __name__ == "__main__":
    worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
