"""CIFAR-10 and CIFAR-100 from their binary distributions (the ``.bin`` batches; never the pickled ones).

CIFAR-10: data_batch_1..5.bin and test_batch.bin, records of 1 label byte + 3,072 pixel bytes (32x32 red,
then green, then blue planes). CIFAR-100: train.bin and test.bin, records of 2 label bytes (coarse, fine) +
3,072 pixel bytes; the fine label (100 classes) is used.
"""
import os

import numpy as np

from ..errors import DataError, MissingFileError
from .bundle import DataBundle
from .dataset import ArrayDataset

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PIXELS = 3 * 32 * 32


def _find(root, names, subfolder):
    for folder in (root, os.path.join(root, subfolder)):
        if all(os.path.isfile(os.path.join(folder, n)) for n in names):
            return folder
    raise MissingFileError(f"CIFAR files not found: expected {', '.join(names)} in {root!r} or in "
                            f"{os.path.join(root, subfolder)!r} (the binary version of the data set)")


def read_records(path, label_bytes, label_index, num_classes):
    """(images (N, 3, 32, 32) float32 in 0..1, labels int64) from one binary CIFAR file."""
    record = label_bytes + PIXELS
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % record:
        raise DataError(f"{path}: a CIFAR batch holds records of {record} bytes ({label_bytes} label byte(s) + "
                         f"3x32x32 pixels), but the file has {raw.size} bytes, not a multiple of {record}")
    records = raw.reshape(-1, record)
    labels = records[:, label_index].astype(np.int64)
    if labels.max() >= num_classes:
        raise DataError(f"{path}: label {labels.max()} found, but CIFAR-{num_classes} has labels 0..{num_classes - 1}")
    images = records[:, label_bytes:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return images, labels


def _class_names(folder, filename, count):
    path = os.path.join(folder, filename)
    if os.path.isfile(path):
        with open(path) as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) == count:
            return names
    return None


def _bundle(name, train, test, classes):
    (train_x, train_y), (test_x, test_y) = train, test
    return DataBundle(name, ArrayDataset(train_x, train_y, classes), ArrayDataset(test_x, test_y, classes),
                      crop_padding=4, flip=True, notes={"pixel_scale": "0..1 RGB"})


def cifar10(root):
    train_files = [f"data_batch_{i}.bin" for i in range(1, 6)]
    folder = _find(root, train_files + ["test_batch.bin"], "cifar-10-batches-bin")
    parts = [read_records(os.path.join(folder, f), 1, 0, 10) for f in train_files]
    train = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    test = read_records(os.path.join(folder, "test_batch.bin"), 1, 0, 10)
    classes = _class_names(folder, "batches.meta.txt", 10) or CIFAR10_CLASSES
    return _bundle(f"cifar10:{root}", train, test, classes)


def cifar100(root):
    folder = _find(root, ["train.bin", "test.bin"], "cifar-100-binary")
    train = read_records(os.path.join(folder, "train.bin"), 2, 1, 100)
    test = read_records(os.path.join(folder, "test.bin"), 2, 1, 100)
    classes = _class_names(folder, "fine_label_names.txt", 100) or [str(c) for c in range(100)]
    return _bundle(f"cifar100:{root}", train, test, classes)
