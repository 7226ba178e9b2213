"""Data-parallel training over MPI (``mpiexec -n N python ...`` or ``mpiexec -n N minires train``).

    from minires import distributed
    distributed.get_rank(), distributed.get_world_size()      # 0 and 1 unless started by mpiexec
    distributed.all_reduce(array)                              # in place, summed over the ranks
    model = distributed.DistributedDataParallel(model)         # gradients averaged in buckets during backward
    model = nn.convert_sync_batchnorm(model)                   # batch-norm statistics of the global batch
    loader = DataLoader(data, b, shuffle=True, sampler=distributed.DistributedSampler(world_size, rank))

world.py holds the process group (mpi4py, optional; NCCL for CuPy arrays), data_parallel.py the wrapper,
sampler.py the shards.
"""
from .data_parallel import DistributedDataParallel
from .sampler import DistributedSampler
from .world import (World, all_reduce, broadcast, get_rank, get_world_size, is_distributed, launched_by_mpi,
                    single_process, world)

__all__ = ["DistributedDataParallel", "DistributedSampler", "World", "all_reduce", "broadcast", "get_rank", "get_world_size",
           "is_distributed", "launched_by_mpi", "single_process", "world"]
