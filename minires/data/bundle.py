"""A DataBundle: a data set's train and test splits with what training needs to know about them."""
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
        """What a checkpoint records about its data, enough to preprocess new images the same way."""
        return {"data": self.name, "classes": self.classes, "input_shape": list(self.input_shape),
                "mean": self.mean, "std": self.std, "train_size": len(self.train), "test_size": len(self.test),
                "augmentation": {"crop_padding": self.crop_padding, "flip": self.flip}, **self.notes}


def split(images, labels, test_fraction, seed):
    """A reproducible stratified split: the same ``test_fraction`` of every class goes to the test set."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[:int(round(len(members) * test_fraction))]] = True
    return (images[~test], labels[~test]), (images[test], labels[test])
