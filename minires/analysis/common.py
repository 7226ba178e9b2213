"""What the experiments share: a fixed batch of data and architecture labels (norms that tolerate inf/NaN\nare backend.l2_norm)."""

from ..data import DataLoader
from ..data import load as load_data

ARCHITECTURES = [("plain", False), ("plain", True), ("residual", False), ("residual", True)]


def label(residual, batch_norm):
    return f"{'residual' if residual else 'plain'} {'+ BN' if batch_norm else 'no BN'}"


def training_batches(spec, batch_size, seed, image_size=32):
    """(bundle, loader over the augmented training split, loader over the test split)."""
    bundle = load_data(spec, image_size=image_size, seed=seed)
    train = DataLoader(bundle.train, batch_size, shuffle=True, drop_last=True, seed=seed,
                       transform=bundle.train_transform())
    test = DataLoader(bundle.test, 512, transform=bundle.eval_transform())
    return bundle, train, test

