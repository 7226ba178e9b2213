"""A DataBundle: a data set's train and test splits with what training needs to know about them."""
import hashlib
from dataclasses import dataclass, field

import numpy as np

from .dataset import ArrayDataset
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip


@dataclass
class DataBundle:
    name: str  # the --data spec it came from, e.g. "digits" or "cifar10:/data/cifar"
    train: ArrayDataset
    test: ArrayDataset
    crop_padding: int = 0  # augmentation: random crops after this much zero padding
    flip: bool = False  # augmentation: random horizontal flips
    notes: dict = field(default_factory=dict)  # e.g. how raw pixels were scaled, for predict
    mean: list = None  # per-channel statistics of the training images (for Normalize)
    std: list = None

    def __post_init__(self):
        if self.mean is None:
            self.mean = self.train.images.mean(axis=(0, 2, 3)).astype(float).tolist()
            self.std = np.maximum(self.train.images.std(axis=(0, 2, 3)), 1e-6).astype(float).tolist()

    @property
    def classes(self):
        return self.train.classes

    @property
    def input_shape(self):
        return tuple(self.train.images.shape[1:])

    def train_transform(self):
        steps = []
        if self.crop_padding:
            steps.append(RandomCrop(self.input_shape[1], self.crop_padding))
        if self.flip:
            steps.append(RandomHorizontalFlip())
        return Compose(steps + [Normalize(self.mean, self.std)])

    def eval_transform(self):
        return Compose([Normalize(self.mean, self.std)])

    def describe(self):
        """What a checkpoint records about its data: enough to preprocess new images the same way, and a
        fingerprint of the contents to notice, on resume, that the data changed."""
        return {"data": self.name, "classes": self.classes, "input_shape": list(self.input_shape),
                "mean": self.mean, "std": self.std, "train_size": len(self.train), "test_size": len(self.test),
                "augmentation": {"crop_padding": self.crop_padding, "flip": self.flip},
                "fingerprint": self.fingerprint(), **self.notes}

    def fingerprint(self):
        """A hash of both splits' images, labels and class names (one pass, ~1 GB/s)."""
        digest = hashlib.blake2b(digest_size=16)
        for split_ in (self.train, self.test):
            for array in (split_.images, split_.labels):
                digest.update(str(array.shape).encode())
                digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
            digest.update("\0".join(split_.classes).encode())
        return digest.hexdigest()


def data_changes(saved, current):
    """How the data described by ``current`` (DataBundle.describe()) differs from ``saved``, in words; empty
    when it is the same data."""
    changes = []
    added = [c for c in current["classes"] if c not in saved["classes"]]
    removed = [c for c in saved["classes"] if c not in current["classes"]]
    if added or removed:
        changes.append("classes" + (f" added {added}" if added else "") + (f" removed {removed}" if removed else ""))
    elif saved["classes"] != current["classes"]:
        changes.append("the classes are in a different order")
    for key, what in (("train_size", "training images"), ("test_size", "test images"),
                      ("input_shape", "image shape")):
        if saved.get(key) != current.get(key):
            changes.append(f"{what} {saved.get(key)} -> {current.get(key)}")
    if not changes and saved.get("fingerprint") not in (None, current["fingerprint"]):
        changes.append("the same sizes and classes, but different images or labels")
    return changes


def split(images, labels, test_fraction, seed):
    """A reproducible stratified split: the same ``test_fraction`` of every class goes to the test set."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[:int(round(len(members) * test_fraction))]] = True
    return (images[~test], labels[~test]), (images[test], labels[test])
