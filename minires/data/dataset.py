"""Datasets: indexable (image, label) collections. ``ArrayDataset`` keeps a whole set in memory as one
(N, C, H, W) float32 array and one int64 label array, so the DataLoader can batch by slicing."""
import numpy as np

from ..errors import ShapeError


class Dataset:
    """Subclass and define ``__len__`` and ``__getitem__(i) -> (image (C, H, W) float32, label int)``; the
    DataLoader batches any such class (ArrayDataset, below, is the fast in-memory one)."""


class ArrayDataset(Dataset):
    def __init__(self, images, labels, classes=None):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4:
            raise ShapeError(f"ArrayDataset: images must be (N, C, H, W), got shape {images.shape}")
        if labels.shape != images.shape[:1]:
            raise ShapeError(f"ArrayDataset: {len(images)} images but labels of shape {labels.shape}")
        self.images = np.ascontiguousarray(images, dtype=np.float32)
        self.labels = labels.astype(np.int64)
        self.classes = list(classes) if classes is not None else [str(c) for c in range(int(labels.max()) + 1)]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])

    def batch(self, indices):
        return self.images[indices], self.labels[indices]
