"""The process group of a data-parallel run: MPI through mpi4py, found only when the process was started by
an MPI launcher (``mpiexec -n N ...``). Otherwise the world is this one process, rank 0 of 1, every
collective returns its input, and mpi4py is never imported (it is the optional extra ``.[mpi]``).

On CuPy arrays the collectives go through NCCL (cupy.cuda.nccl), one communicator per process set up from
MPI: written against CuPy's documented API; it runs only where a GPU is.
"""
import contextlib
import os
import sys
import time
import traceback

from .. import backend
from ..errors import MissingDependencyError

# what MPI launchers put in each process's environment: MPICH/Hydra (PMI), Open MPI, PMIx, Slurm's srun
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "SLURM_NTASKS")
_world = None


def launched_by_mpi():
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


class World:
    """One MPI communicator, or none (a single process)."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self._nccl = None
        # all_arrive's own communicator: its barrier cannot match a collective another rank still waits in
        self._ending = comm.Dup() if comm is not None and self.size > 1 else None

    # --- collectives on arrays, in place ---------------------------------------------------------------
    def all_reduce(self, array):
        """array = the sum of every rank's array (in place); returns it."""
        if self.size > 1:
            self.start_all_reduce(array).wait()
        return array

    def start_all_reduce(self, array):
        """Begin summing ``array`` across ranks in place without waiting: a request whose wait() finishes."""
        if self.size == 1:
            return _Done()
        if backend.device_of(array) == "cuda":
            return self._nccl_world().all_reduce(array)
        from mpi4py import MPI
        return self.comm.Iallreduce(MPI.IN_PLACE, array, op=MPI.SUM)

    def broadcast(self, array, root=0):
        """Every rank's ``array`` becomes root's (in place); returns it."""
        if self.size > 1:
            if backend.device_of(array) == "cuda":
                self._nccl_world().broadcast(array, root)
            else:
                self.comm.Bcast(array, root=root)
        return array

    def barrier(self):
        if self.size > 1:
            self.comm.Barrier()

    def all_arrive(self, seconds):
        """Whether every rank calls this within ``seconds`` of each other: True when a run ends on a verdict
        every rank shares (a diverged step, a stop request, the same user fault), False when some rank is
        elsewhere (still waiting in a collective for a rank that failed alone)."""
        if self._ending is None:
            return True
        request, deadline = self._ending.Ibarrier(), time.monotonic() + seconds
        while not request.Test():
            if time.monotonic() > deadline:
                return False  # left pending: the caller aborts the job
            time.sleep(0.005)
        return True

    def abort(self, code=1):
        """End every rank now (a failed rank must not leave the others waiting in a collective)."""
        if self.size > 1:
            sys.stdout.flush(), sys.stderr.flush()
            self.comm.Abort(code)

    def _nccl_world(self):
        if self._nccl is None:
            self._nccl = _NcclWorld(self)
        return self._nccl


class _Done:
    def wait(self):
        return None


class _NcclWorld:
    """NCCL over the GPUs of an MPI world: the unique id from rank 0 by MPI, then NCCL's collectives on the
    current stream (their wait() synchronises that stream)."""

    def __init__(self, world):
        cupy, nccl = backend.xp_for("cuda"), backend.nccl()
        self.cupy, self.nccl = cupy, nccl
        cupy.cuda.Device(world.rank % cupy.cuda.runtime.getDeviceCount()).use()  # one GPU per rank
        uid = world.comm.bcast(nccl.get_unique_id() if world.rank == 0 else None, root=0)
        self.communicator = nccl.NcclCommunicator(world.size, uid, world.rank)

    def _type(self, array):
        return {"float32": self.nccl.NCCL_FLOAT32, "float64": self.nccl.NCCL_FLOAT64}[str(array.dtype)]

    def all_reduce(self, array):
        stream = self.cupy.cuda.get_current_stream()
        self.communicator.allReduce(array.data.ptr, array.data.ptr, array.size, self._type(array), self.nccl.NCCL_SUM,
                                    stream.ptr)
        return _StreamDone(stream)

    def broadcast(self, array, root):
        stream = self.cupy.cuda.get_current_stream()
        self.communicator.bcast(array.data.ptr, array.size, self._type(array), root, stream.ptr)
        stream.synchronize()


class _StreamDone:
    def __init__(self, stream):
        self.stream = stream

    def wait(self):
        self.stream.synchronize()


def world():
    """This process's World (created on first use)."""
    global _world
    if _world is None:
        _world = World(_mpi_comm() if launched_by_mpi() else None)
        if _world.size > 1:
            sys.excepthook = _abort_on_exception
    return _world


def _mpi_comm():
    try:
        from mpi4py import MPI
    except ImportError:
        raise MissingDependencyError("this process was started by an MPI launcher but mpi4py is not installed: "
                                     "pip install 'minires-nn[mpi]' (mpi4py and mpich)") from None
    return MPI.COMM_WORLD


def _abort_on_exception(kind, value, trace):
    """An uncaught exception on one rank: print it once, prefixed by the rank, and end every rank."""
    rank = _world.rank if _world is not None else 0
    sys.stderr.write(f"[rank {rank}] " + "".join(traceback.format_exception(kind, value, trace)))
    _world.abort(1)


def get_rank():
    return world().rank


def get_world_size():
    return world().size


def is_distributed():
    return world().size > 1


def all_reduce(array):
    return world().all_reduce(array)


def broadcast(array, root=0):
    return world().broadcast(array, root)


@contextlib.contextmanager
def single_process():
    """Inside the block the world is this process alone (tests, and a rank's own evaluation)."""
    global _world
    saved, _world = _world, World(None)
    try:
        yield _world
    finally:
        _world = saved

