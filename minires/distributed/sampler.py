"""DistributedSampler, as torch's: each rank's disjoint, equal-sized shard of an epoch's order.

Every rank draws the same permutation (the loader's seed and the epoch), pads it by repeating its start to
a multiple of the world size (or, with ``drop_last``, drops the tail), and takes every world_size-th index
from its rank on. So the ranks' k-th batches together hold exactly the indices of the single-process
loader's k-th batch of world_size times the size (in another order), and every rank has as many batches as
the others: no rank waits in a collective for a batch another rank does not have.
"""
import numpy as np

from ..errors import ArgumentError


class DistributedSampler:
    def __init__(self, num_replicas, rank, drop_last=False):
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ArgumentError(f"DistributedSampler: rank {rank} is not one of {num_replicas} replicas")
        self.num_replicas, self.rank, self.drop_last = int(num_replicas), int(rank), drop_last

    def shard_size(self, n):
        """How many indices each rank gets of an epoch of ``n``."""
        return n // self.num_replicas if self.drop_last else -(-n // self.num_replicas)

    def shard(self, order):
        """This rank's indices of the epoch ``order`` (the same order on every rank)."""
        total = self.shard_size(len(order)) * self.num_replicas
        padded = np.resize(order, total) if total > len(order) else order[:total]  # resize repeats the start
        return padded[self.rank::self.num_replicas]
