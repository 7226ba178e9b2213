"""DataLoader: batches of (images, labels) as NumPy arrays, shuffled reproducibly.

The order of epoch e is a permutation drawn from Generator([seed, e]); the augmentation of batch b in epoch
e draws from Generator([seed, e, b]). Nothing depends on what ran before, so a run resumed at any epoch
and batch sees exactly the batches an uninterrupted run would have seen. With a ``sampler``
(minires.distributed.DistributedSampler) the loader walks this rank's shard of each epoch's order, and its
augmentation draws from Generator([seed, e, b, rank]): reproducible for a given world size.
"""
import numpy as np

from ..errors import ArgumentError
from .dataset import ArrayDataset


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=0, transform=None, sampler=None):
        if batch_size < 1:
            raise ArgumentError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        if len(dataset) == 0:
            raise ArgumentError("DataLoader: the dataset is empty")
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), shuffle
        self.drop_last, self.seed, self.transform = drop_last, int(seed), transform
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else self.sampler.shard_size(len(self.dataset))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch):
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        return order if self.sampler is None else self.sampler.shard(order)

    def batches(self, epoch, start=0):
        """Yield the batches of ``epoch`` from batch number ``start`` on."""
        order = self.order(epoch)
        for b in range(start, len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            if isinstance(self.dataset, ArrayDataset):
                images, labels = self.dataset.batch(indices)
            else:
                items = [self.dataset[int(i)] for i in indices]
                images = np.stack([np.asarray(x, np.float32) for x, _ in items])
                labels = np.array([y for _, y in items], np.int64)
            if self.transform is not None:
                key = [self.seed, epoch, b] + ([] if self.sampler is None else [self.sampler.rank])
                images = self.transform(images, np.random.default_rng(key))
            yield np.ascontiguousarray(images, np.float32), labels

    def __iter__(self):
        return self.batches(self.epoch)
