"""Data (``minires.data``): Dataset, DataLoader, batch transforms, and the data sets training uses.

``load(spec)`` reads a --data spec: ``digits`` (the default, bundled with scikit-learn), ``cifar10:PATH``,
``cifar100:PATH``, ``mnist:PATH``, ``folder:PATH`` (class sub-folders of PNG/JPEG files), ``synthetic``.
``~`` and ``$VARS`` in PATH are expanded. Nothing is downloaded and nothing is unpickled.
"""
import os

from ..errors import ArgumentError
from .bundle import DataBundle
from .cifar import cifar10, cifar100
from .dataset import ArrayDataset, Dataset
from .digits import digits
from .folder import image_folder, load_image
from .loader import DataLoader
from .mnist import mnist, read_idx
from .synthetic import synthetic
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip

SPECS = ("digits", "cifar10:PATH", "cifar100:PATH", "mnist:PATH", "folder:PATH", "synthetic")


def load(spec, image_size=64, seed=0):
    """A DataBundle for a --data spec (see the module docstring)."""
    name, _, path = str(spec).partition(":")
    path = os.path.expanduser(os.path.expandvars(path))  # "cifar10:~/data": no shell expands ~ after ":"
    readers = {"cifar10": cifar10, "cifar100": cifar100, "mnist": mnist,
               "folder": lambda root: image_folder(root, image_size=image_size, seed=seed)}
    if name in ("digits", "synthetic") and not path:
        return digits() if name == "digits" else synthetic(seed=seed)
    if name in readers and path:
        return readers[name](path)
    raise ArgumentError(f"unknown --data {spec!r}: expected one of {', '.join(SPECS)}")


__all__ = ["Dataset", "ArrayDataset", "DataLoader", "DataBundle", "Compose", "RandomCrop", "RandomHorizontalFlip",
           "Normalize", "digits", "cifar10", "cifar100", "mnist", "image_folder", "synthetic", "load", "load_image",
           "read_idx", "SPECS"]
