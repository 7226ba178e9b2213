"""MNIST (or any data set in its IDX format, e.g. Fashion-MNIST) from the four IDX files, gzipped or not.

IDX: a 4-byte magic (0, 0, type, rank), then ``rank`` big-endian int32 sizes, then the values. Images are
type 0x08 (unsigned bytes) of rank 3, labels of rank 1.
"""
import gzip
import os
import zlib

import numpy as np

from ..errors import DataError, MissingFileError
from .bundle import DataBundle
from .dataset import ArrayDataset

FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


MAX_VALUES = 2**31  # 2 GiB of bytes: far above any IDX data set, far below what a crafted header could claim


def read_idx(path, rank):
    """An IDX file (gzipped or not) as a uint8 array. The header is read first and the rest is read (and,
    for gzip, inflated) only up to the size the header promises: a gzip bomb or a lying header is refused
    without inflating it."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            header = f.read(4 + 4 * rank)
            if len(header) < 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08 or header[3] != rank:
                raise DataError(f"{path}: not an IDX file of unsigned bytes with {rank} axes (magic "
                                f"{header[:4].hex() or 'missing'}, expected 000008{rank:02x})")
            shape = tuple(int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big") for i in range(rank))
            expected = int(np.prod(shape, dtype=np.int64)) if len(header) == 4 + 4 * rank else -1
            if not 0 <= expected <= MAX_VALUES:
                raise DataError(f"{path}: a damaged header (sizes {shape})")
            data = f.read(expected + 1)  # one byte more than promised tells a longer file
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: a damaged gzip file ({exc})") from None
    if len(data) != expected:
        held = f"{len(data)}" if len(data) <= expected else f"more than {expected}"
        raise DataError(f"{path}: the header says {shape} = {expected} values but the file holds {held}")
    return np.frombuffer(data, np.uint8).reshape(shape)


def _locate(root, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            return path
    raise MissingFileError(f"MNIST file not found: expected {stem} (or {stem}.gz) in {root!r}")


def mnist(root):
    arrays = {key: read_idx(_locate(root, stem), 3 if key.endswith("images") else 1) for key, stem in FILES.items()}
    for part in ("train", "test"):
        if len(arrays[f"{part}_images"]) != len(arrays[f"{part}_labels"]):
            raise DataError(f"MNIST in {root!r}: {len(arrays[f'{part}_images'])} {part} images but "
                             f"{len(arrays[f'{part}_labels'])} labels")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(f"MNIST in {root!r}: the test images are {arrays['test_images'].shape[1:]} but the "
                        f"training images {arrays['train_images'].shape[1:]}")
    classes = [str(c) for c in range(int(max(arrays["train_labels"].max(), arrays["test_labels"].max())) + 1)]

    def dataset(part):
        images = arrays[f"{part}_images"].astype(np.float32)[:, None] / 255.0
        return ArrayDataset(images, arrays[f"{part}_labels"], classes)
    return DataBundle(f"mnist:{root}", dataset("train"), dataset("test"), crop_padding=2,
                      notes={"pixel_scale": "0..1, ink high", "ink_is_high": True})
