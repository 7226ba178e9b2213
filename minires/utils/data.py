"""``minires.utils.data``: torch.utils.data's Dataset, TensorDataset, Subset, random_split and DataLoader, for
PyTorch programs. A batch is what torch's default collate makes of a list of samples: Tensors, arrays and
numbers stacked into Tensors (ints as int64, floats as float64 as torch does), tuples, lists and dicts
collated item by item, strings kept as lists.

(minires.data's own DataLoader, which the trainer and the lab use, yields NumPy arrays and reproduces any
batch from (seed, epoch, batch) alone; this one follows torch: it shuffles with the default generator that
``minires.manual_seed`` seeds, or with ``generator=``.) Worker processes are not used: ``num_workers`` and
``pin_memory`` are accepted and the batches are made in the calling process.
"""
import numbers

import numpy as np

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError
from ..rng import as_generator
from ..tensor import Tensor


class Dataset:
    """Subclass and define ``__getitem__`` (and ``__len__`` for a DataLoader), as with torch."""

    def __getitem__(self, index):
        raise ArgumentTypeError(f"{type(self).__name__} must define __getitem__")


class TensorDataset(Dataset):
    """Sample i is (t[i] for t in tensors); the tensors share their first size."""

    def __init__(self, *tensors):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ArgumentError("TensorDataset: give one or more tensors with the same first size")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Split into non-overlapping Subsets of the given lengths (or fractions that sum to 1, as torch)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and abs(sum(lengths) - 1) < 1e-9:
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):  # the remainder goes round robin, as torch does
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ArgumentError(f"random_split: the lengths {lengths} do not add up to the dataset's {n} samples")
    order = as_generator(generator).permutation(n)
    bounds = np.cumsum([0] + lengths)
    return [Subset(dataset, order[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:])]


def default_collate(batch):
    """torch's default_collate: stack what can be stacked, recurse into containers."""
    samples = batch
    first = samples[0]
    if isinstance(first, Tensor):
        xp = backend.get_array_module(first.array)
        return Tensor._make(xp.stack([s.array for s in samples]))
    if isinstance(first, np.ndarray):
        return Tensor._make(np.stack(samples))
    if isinstance(first, (bool, np.bool_)):
        return Tensor._make(np.array(samples, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return Tensor._make(np.array(samples, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return Tensor._make(np.array(samples, dtype=np.float64))
    if isinstance(first, (str, bytes)):
        return list(samples)
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # a namedtuple stays one
        return type(first)(*(default_collate(list(items)) for items in zip(*samples)))
    if isinstance(first, (tuple, list)):  # torch makes a list of a batch of tuples too
        return [default_collate(list(items)) for items in zip(*samples)]
    raise ArgumentTypeError(f"DataLoader: cannot collate samples of type {type(first).__name__}; pass collate_fn=")


class DataLoader:
    """Batches of a Dataset, in order or shuffled, collated as torch collates them."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral) or batch_size < 1):
            raise ArgumentError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ArgumentError("DataLoader: sampler and shuffle=True cannot be used together (as in torch)")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.collate_fn = collate_fn or default_collate
        self.num_workers, self.pin_memory = num_workers, pin_memory

    def _indices(self):
        if self.sampler is not None:
            return list(self.sampler)
        n = len(self.dataset)
        return as_generator(self.generator).permutation(n).tolist() if self.shuffle else list(range(n))

    def _batches_of_indices(self):
        if self.batch_sampler is not None:
            yield from self.batch_sampler
            return
        indices = self._indices()
        for start in range(0, len(indices), self.batch_size):
            batch = indices[start:start + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __iter__(self):
        for batch in self._batches_of_indices():
            if isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate:
                # one gather per tensor instead of a sample at a time
                yield [Tensor._make(t.array[backend.get_array_module(t.array).asarray(batch)])
                       for t in self.dataset.tensors]
            else:
                yield self.collate_fn([self.dataset[i] for i in batch])

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
