"""Batch transforms: callables ``transform(images, rng) -> images`` on (B, C, H, W) float32 batches.
Random ones draw from the Generator they are given, so an epoch's augmentation is reproducible."""
import numpy as np

from ..errors import ArgumentError


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, images, rng):
        for transform in self.transforms:
            images = transform(images, rng)
        return images

    def __repr__(self):
        return f"Compose({self.transforms})"


class RandomCrop:
    """Pad each image by ``padding`` zeros on every side, then cut a random ``size`` x ``size`` window."""

    def __init__(self, size, padding=0):
        self.size, self.padding = size, padding

    def __call__(self, images, rng):
        p, s = self.padding, self.size
        padded = np.pad(images, ((0, 0), (0, 0), (p, p), (p, p)))
        h, w = padded.shape[2:]
        if s > h or s > w:
            raise ArgumentError(f"RandomCrop: crop {s} is larger than the padded image {h}x{w}")
        tops = rng.integers(0, h - s + 1, len(images))
        lefts = rng.integers(0, w - s + 1, len(images))
        return np.stack([image[:, t:t + s, l:l + s] for image, t, l in zip(padded, tops, lefts)])

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, images, rng):
        flip = rng.random(len(images)) < self.p
        images = images.copy()
        images[flip] = images[flip, :, :, ::-1]
        return images

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """(x - mean) / std per channel."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, -1, 1, 1)

    def __call__(self, images, rng=None):
        return (images - self.mean) / self.std

    def __repr__(self):
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"
