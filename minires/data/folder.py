"""An image folder: one sub-folder per class holding PNG or JPEG files (e.g. a plant-disease photo set).

With ``train/`` and ``test/`` (or ``val/``) sub-folders, those are the splits; otherwise a reproducible
stratified 20% of every class is held out for testing. Images are decoded with Pillow, converted to RGB and
resized to ``image_size`` x ``image_size`` when loaded.
"""
import os

import numpy as np

from ..errors import DataError, MissingDependencyError, MissingFileError
from .bundle import DataBundle, split
from .dataset import ArrayDataset

EXTENSIONS = (".png", ".jpg", ".jpeg")


def load_image(path, image_size, mode="RGB"):
    """One image file as a (C, size, size) float32 array in 0..1."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise MissingDependencyError("image folders need Pillow: pip install 'minires-nn[data]'") from None
    try:
        with Image.open(path) as image:
            image = image.convert(mode).resize((image_size, image_size), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _scan(root):
    if not os.path.isdir(root):
        raise MissingFileError(f"image folder {root!r} does not exist")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    files = {c: sorted(f for f in os.listdir(os.path.join(root, c)) if f.lower().endswith(EXTENSIONS))
             for c in classes}
    files = {c: fs for c, fs in files.items() if fs}
    if len(files) < 2:
        raise DataError(f"image folder {root!r}: expected at least two class sub-folders holding "
                         f"{'/'.join(EXTENSIONS)} files, found {len(files)}")
    return files


def _load(root, files, classes, image_size):
    images, labels = [], []
    for c, names in files.items():
        for name in names:
            images.append(load_image(os.path.join(root, c, name), image_size))
            labels.append(classes.index(c))
    return np.stack(images), np.array(labels, np.int64)


def image_folder(root, image_size=64, test_fraction=0.2, seed=0):
    splits = [d for d in ("test", "val") if os.path.isdir(os.path.join(root, d))]
    if os.path.isdir(os.path.join(root, "train")) and splits:
        train_files = _scan(os.path.join(root, "train"))
        test_files = _scan(os.path.join(root, splits[0]))
        classes = sorted(set(train_files) | set(test_files))
        train = _load(os.path.join(root, "train"), train_files, classes, image_size)
        test = _load(os.path.join(root, splits[0]), test_files, classes, image_size)
    else:
        files = _scan(root)
        classes = sorted(files)
        train, test = split(*_load(root, files, classes, image_size), test_fraction, seed)
    return DataBundle(f"folder:{root}", ArrayDataset(*train, classes), ArrayDataset(*test, classes),
                      crop_padding=max(1, image_size // 8), flip=True,
                      notes={"pixel_scale": "0..1 RGB", "image_size": image_size})
