"""A synthetic data set that needs no files: every class is a smooth random pattern, every image its class's
pattern plus noise. Learnable, reproducible from its seed, any size."""
import numpy as np

from .bundle import DataBundle
from .dataset import ArrayDataset


def synthetic(train_size=2000, test_size=500, classes=4, size=16, channels=3, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((classes, channels, 4, 4))
    patterns = coarse.repeat(-(-size // 4), axis=2).repeat(-(-size // 4), axis=3)[:, :, :size, :size]

    def draw(n):
        labels = rng.integers(0, classes, n)
        images = patterns[labels] + noise * rng.standard_normal((n, channels, size, size))
        return ArrayDataset(images.astype(np.float32), labels, [f"class{c}" for c in range(classes)])
    return DataBundle("synthetic", draw(train_size), draw(test_size), notes={"pixel_scale": "synthetic"})
