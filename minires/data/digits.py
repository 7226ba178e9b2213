"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): the default data set, on disk
with scikit-learn, so nothing is downloaded. Pixels 0..16 are scaled to 0..1 (ink is high)."""
import numpy as np

from ..errors import MissingDependencyError

from .bundle import DataBundle, split
from .dataset import ArrayDataset

TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed, so every run tests on the same 360 images


def digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingDependencyError("the digits data set needs scikit-learn: pip install 'minires-nn[data]'") from None
    raw = load_digits()
    images = (raw.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    (train_x, train_y), (test_x, test_y) = split(images, raw.target, TEST_FRACTION, SPLIT_SEED)
    classes = [str(c) for c in range(10)]
    return DataBundle("digits", ArrayDataset(train_x, train_y, classes), ArrayDataset(test_x, test_y, classes),
                      crop_padding=1, notes={"pixel_scale": "0..1, ink high", "ink_is_high": True})
