"""An image folder: one sub-folder per class holding PNG or JPEG files (e.g. a plant-disease photo set).

With ``train/`` and ``test/`` (or ``val/``) sub-folders, those are the splits; otherwise a reproducible
stratified 20% of every class is held out for testing. Images are decoded with Pillow, converted to RGB and
resized to ``image_size`` x ``image_size`` when loaded.
"""
import logging
import os
import stat

import numpy as np

from ..errors import DataError, MissingDependencyError, MissingFileError
from .bundle import DataBundle, split
from .dataset import ArrayDataset

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg")
MAX_PIXELS = 2**26  # 67 million: an 8192 x 8192 photo; larger is refused before it is decoded
WIDE_MODES = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I": 65535.0, "F": 1.0}  # 16-bit, 32-bit


def load_image(path, image_size, mode="RGB"):
    """One image file as a (C, size, size) float32 array in 0..1. 8-bit images are scaled by 255, 16-bit
    ones by 65535 (their real range, not clipped to 8 bits). Only regular files are opened, and an image of
    more than MAX_PIXELS pixels is refused from its header, before it is decoded."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise MissingDependencyError("image folders need Pillow: pip install 'minires-nn[data]'") from None
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise DataError(f"{path}: not a regular file")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise DataError(f"{path}: {image.width} x {image.height} pixels, more than the {MAX_PIXELS:,} "
                                f"minires decodes")
            if image.mode in WIDE_MODES:
                scale = WIDE_MODES[image.mode]
                wide = np.asarray(image, dtype=np.float32) / scale
                image = Image.fromarray(np.clip(wide * 255.0, 0, 255).round().astype(np.uint8))
            image = image.convert(mode).resize((image_size, image_size), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _image_files(folder):
    """The image files of one class folder; FIFOs, devices and sockets are skipped (never opened)."""
    names = []
    for name in sorted(os.listdir(folder)):
        if not name.lower().endswith(EXTENSIONS):
            continue
        if stat.S_ISREG(os.stat(os.path.join(folder, name)).st_mode):
            names.append(name)
        else:
            log.warning("skipped %s: not a regular file", os.path.join(folder, name))
    return names


def _scan(root):
    if not os.path.isdir(root):
        raise MissingFileError(f"image folder {root!r} does not exist")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    by_case = {}
    for c in classes:
        by_case.setdefault(c.lower(), []).append(c)
    clashes = [names for names in by_case.values() if len(names) > 1]
    if clashes:
        raise DataError(f"image folder {root!r}: class folders that differ only by case: "
                        f"{', '.join(' / '.join(names) for names in clashes)}; merge or rename them")
    files = {c: _image_files(os.path.join(root, c)) for c in classes}
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
        untrained = sorted(set(test_files) - set(train_files))
        if untrained:
            near = {c.lower(): c for c in train_files}
            hints = [f"{c} (train has {near[c.lower()]})" if c.lower() in near else c for c in untrained]
            raise DataError(f"image folder {root!r}: {splits[0]}/ has classes that train/ does not: "
                            f"{', '.join(hints)}; a class that is never trained cannot be learned")
        classes = sorted(train_files)
        train = _load(os.path.join(root, "train"), train_files, classes, image_size)
        test = _load(os.path.join(root, splits[0]), test_files, classes, image_size)
    else:
        files = _scan(root)
        classes = sorted(files)
        train, test = split(*_load(root, files, classes, image_size), test_fraction, seed)
    return DataBundle(f"folder:{root}", ArrayDataset(*train, classes), ArrayDataset(*test, classes),
                      crop_padding=max(1, image_size // 8), flip=True,
                      notes={"pixel_scale": "0..1 RGB", "image_size": image_size})
