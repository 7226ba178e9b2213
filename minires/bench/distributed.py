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
import tempfile
import time

from .. import distributed
from ..errors import DistributedError, MissingDependencyError
from .steps import minires_step


def worker(name, batch, size, repeats, warmup, out):
    """One rank's part (run under mpiexec): rank 0 writes its medians to the JSON file ``out``."""
    world = distributed.world()
    replicas, communication = [], []
    step, _ = minires_step(name, batch // world.size, size, seed=world.rank,
                           wrap=lambda model: replicas.append(distributed.DistributedDataParallel(model, world=world))
                           or replicas[-1])

    def communicating_step():
        replicas[0].communication_seconds = 0.0
        step()
        communication.append(replicas[0].communication_seconds)

    times = _seconds(communicating_step, repeats, warmup, before=world.barrier)  # the ranks start each step together
    if world.rank == 0:
        with open(out, "w") as f:
            json.dump({"ranks": world.size, "step": statistics.median(times),
                       "allreduce": statistics.median(communication[warmup:])}, f)


def _seconds(step, repeats, warmup, before=None):
    """The seconds of each of ``repeats`` calls of ``step`` after ``warmup`` untimed ones; ``before()`` runs
    untimed ahead of every call."""
    times = []
    for i in range(warmup + repeats):
        if before is not None:
            before()
        started = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return times


def scaling(name, batch, size, ranks, repeats, warmup):
    """(single-process row, distributed row) dicts: step seconds, allreduce seconds, threads per rank."""
    if shutil.which("mpiexec") is None:
        raise MissingDependencyError("minires bench --distributed needs mpiexec and mpi4py: "
                                     "pip install 'minires-nn[mpi]'")
    cores = len(os.sched_getaffinity(0))
    step, _ = minires_step(name, batch, size)
    single = {"ranks": 1, "threads": cores, "step": statistics.median(_seconds(step, repeats, warmup)),
              "allreduce": 0.0}
    threads = max(1, cores // ranks)
    environment = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "rank0.json")
        result = subprocess.run(["mpiexec", "-n", str(ranks), sys.executable, "-m", __name__, name, str(batch),
                                 str(size), str(repeats), str(warmup), out], capture_output=True, text=True,
                                env=environment)
        if result.returncode:
            raise DistributedError(f"the distributed benchmark failed:\n{result.stderr[-2000:]}")
        with open(out) as f:
            row = json.load(f)
    row["threads"] = threads
    return single, row


if __name__ == "__main__":
    worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
