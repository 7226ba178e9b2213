"""Data sets parse their real binary formats (written here, small), loaders batch reproducibly, and bad
files get errors that name the file and what was expected."""
import gzip
import os

import numpy as np
import pytest
from PIL import Image

from minires import data
from minires.data import DataLoader, RandomCrop, RandomHorizontalFlip

rng = np.random.default_rng(0)


def write_cifar(folder, batches, per_batch=7, label_bytes=1, classes=10):
    os.makedirs(folder, exist_ok=True)
    expected = {}
    for name in batches:
        labels = rng.integers(0, classes, (per_batch, label_bytes), dtype=np.uint8)
        pixels = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        np.concatenate([labels, pixels], axis=1).tofile(os.path.join(folder, name))
        expected[name] = (labels[:, -1], pixels.reshape(-1, 3, 32, 32))
    return expected


def test_cifar10_binary_batches(tmp_path):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    expected = write_cifar(tmp_path / "cifar-10-batches-bin", names)
    bundle = data.load(f"cifar10:{tmp_path}")
    assert len(bundle.train) == 35 and len(bundle.test) == 7 and bundle.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(bundle.train.labels[7:14], expected["data_batch_2.bin"][0])
    np.testing.assert_allclose(bundle.test.images * 255, expected["test_batch.bin"][1], atol=1e-3)
    assert bundle.classes[0] == "airplane" and bundle.flip and bundle.crop_padding == 4


def test_cifar100_uses_the_fine_labels(tmp_path):
    expected = write_cifar(tmp_path, ["train.bin", "test.bin"], label_bytes=2, classes=100)
    bundle = data.cifar100(str(tmp_path))
    np.testing.assert_array_equal(bundle.train.labels, expected["train.bin"][0])
    assert len(bundle.classes) == 100


def test_a_cifar_batch_of_the_wrong_size_is_named(tmp_path):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    write_cifar(tmp_path, names)
    with open(tmp_path / "data_batch_3.bin", "ab") as f:
        f.write(b"\x00" * 10)
    with pytest.raises(ValueError, match=r"data_batch_3.bin: .*records of 3073 bytes.*21521 bytes"):
        data.cifar10(str(tmp_path))


def test_missing_cifar_files_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin.*test_batch.bin"):
        data.cifar10(str(tmp_path))


def write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if compress else payload)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_files_gzipped_or_not(tmp_path, compress):
    suffix = ".gz" if compress else ""
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 12),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5)}
    for name, array in arrays.items():
        write_idx(tmp_path / (name + suffix), array, compress)
    bundle = data.load(f"mnist:{tmp_path}")
    assert bundle.input_shape == (1, 28, 28) and len(bundle.train) == 12 and len(bundle.test) == 5
    np.testing.assert_array_equal(bundle.test.labels, arrays["t10k-labels-idx1-ubyte"])
    np.testing.assert_allclose(bundle.train.images[:, 0] * 255, arrays["train-images-idx3-ubyte"], atol=1e-3)


def test_a_malformed_idx_file_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: the header says \(5, 28, 28\)"):
        data.read_idx(str(path), 3)
    path.write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(str(path), 3)


def write_images(folder, classes=("healthy", "rust"), per_class=5, size=20):
    for c, name in enumerate(classes):
        os.makedirs(folder / name, exist_ok=True)
        for i in range(per_class):
            colour = (200 * c, 100, 255 - 200 * c)
            Image.new("RGB", (size, size + i), colour).save(folder / name / f"leaf{i}.{'png' if i % 2 else 'jpg'}")


def test_image_folder_split_automatically(tmp_path):
    write_images(tmp_path)
    bundle = data.load(f"folder:{tmp_path}", image_size=16)
    assert bundle.classes == ["healthy", "rust"] and bundle.input_shape == (3, 16, 16)
    assert len(bundle.train) == 8 and len(bundle.test) == 2  # 20% of each class
    assert set(bundle.test.labels.tolist()) == {0, 1}
    red = bundle.train.images[bundle.train.labels == 1][0, 0].mean()
    assert abs(red - 200 / 255) < 0.02


def test_image_folder_with_train_and_test_folders(tmp_path):
    write_images(tmp_path / "train")
    write_images(tmp_path / "test", per_class=2)
    bundle = data.image_folder(str(tmp_path), image_size=8)
    assert len(bundle.train) == 10 and len(bundle.test) == 4


def test_an_unreadable_image_is_named(tmp_path):
    write_images(tmp_path)
    (tmp_path / "rust" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="broken.png: not a readable image"):
        data.image_folder(str(tmp_path), image_size=8)


def test_unknown_data_specs_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown --data 'imagenet'.*cifar10:PATH"):
        data.load("imagenet")


def test_loader_shuffles_reproducibly_and_covers_every_sample_once():
    dataset = data.ArrayDataset(np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1), np.arange(10))
    loader = DataLoader(dataset, batch_size=3, shuffle=True, seed=7)
    first = [labels.tolist() for _, labels in loader.batches(0)]
    assert [len(b) for b in first] == [3, 3, 3, 1]
    assert sorted(sum(first, [])) == list(range(10))
    assert first == [labels.tolist() for _, labels in DataLoader(dataset, 3, shuffle=True, seed=7).batches(0)]
    assert first != [labels.tolist() for _, labels in loader.batches(1)]  # a new order each epoch
    assert [labels.tolist() for _, labels in loader.batches(0, start=2)] == first[2:]
    assert len(DataLoader(dataset, 3, drop_last=True)) == 3


def test_transforms_crop_and_flip_batches():
    images = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    cropped = RandomCrop(4, padding=1)(images, np.random.default_rng(0))
    assert cropped.shape == images.shape
    flipped = RandomHorizontalFlip(p=1.0)(images, np.random.default_rng(0))
    np.testing.assert_array_equal(flipped, images[:, :, :, ::-1])
    same = RandomCrop(4, padding=0)(images, np.random.default_rng(0))
    np.testing.assert_array_equal(same, images)


def test_digits_is_the_bundled_default():
    bundle = data.load("digits")
    assert bundle.input_shape == (1, 8, 8) and len(bundle.train) + len(bundle.test) == 1797
    assert abs(len(bundle.test) / 1797 - 0.2) < 0.01
    np.testing.assert_array_equal(data.load("digits").test.labels, bundle.test.labels)  # a fixed split


def test_synthetic_data_is_reproducible():
    a, b = data.synthetic(seed=3, train_size=20), data.synthetic(seed=3, train_size=20)
    np.testing.assert_array_equal(a.train.images, b.train.images)
