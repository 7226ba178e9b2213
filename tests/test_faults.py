"""Faults and hostile input: nothing lost, nothing hidden, one clear line. One test per case of the fault
review (issue 13), named after it."""
import errno
import gzip
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import minires as mr
from minires import checkpoint, data, models
from minires.cli import main
from minires.errors import DataError, DTypeError, MiniresError
from minires.nn import StateDictError
from minires.training.run_directory import RunDirectory

QUICK = ["--data", "synthetic", "--epochs", "1", "--batch-size", "256", "--quiet"]


def one_line_error(capsys, argv, code=2):
    """Run the CLI in-process: it must exit with ``code`` and print exactly one line, on stderr."""
    assert main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"minires {argv[0]}: "), captured.err
    return lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("runs") / "r20"
    assert main(["train", *QUICK, "--out", str(directory)]) == 0
    return directory


def rewrite_run_state(directory, change):
    path = directory / "checkpoint.safetensors"
    tensors = checkpoint.load(path)
    state = json.loads(checkpoint.load_metadata(path)["minires.run_state"])
    change(state)
    checkpoint.save(tensors, path, metadata={"minires.run_state": json.dumps(state)})


# --- one error story: the review's tracebacks ----------------------------------------------------

def test_evaluate_a_checkpoint_of_another_model_is_one_line(trained_run, tmp_path, capsys):
    other = tmp_path / "other"
    os.system(f"cp -r {trained_run} {other}")
    rewrite_run_state(other, lambda s: s["config"].update(model="resnet32"))
    line = one_line_error(capsys, ["evaluate", "--checkpoint", str(other)])
    assert "missing keys: layer1.3" in line


@pytest.mark.skipif(mr.backend.cuda_available(), reason="a GPU is present")
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_device_cuda_without_cupy_is_one_line(trained_run, tmp_path, capsys, command):
    image = tmp_path / "x.png"
    from PIL import Image
    Image.new("L", (8, 8)).save(image)
    argv = [command, "--checkpoint", str(trained_run), "--device", "cuda"] + ([str(image)] if command == "predict" else [])
    assert "cuda" in one_line_error(capsys, argv)


@pytest.mark.parametrize("field, value", [("epoch", "three"), ("history", {}), ("data", None),
                                          ("input_shape", [1, 10**6, 10**6]), ("classes", [])])
def test_a_wrong_typed_run_state_is_one_line(trained_run, tmp_path, capsys, field, value):
    damaged = tmp_path / "damaged"
    os.system(f"cp -r {trained_run} {damaged}")

    def change(state):
        (state["data"] if field in ("input_shape", "classes") else state)[field] = value
    rewrite_run_state(damaged, change)
    assert "damaged run state" in one_line_error(capsys, ["evaluate", "--checkpoint", str(damaged)])
    assert "damaged run state" in one_line_error(capsys, ["train", "--resume", str(damaged), "--quiet"])


def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint.os, "fsync", full)
    line = one_line_error(capsys, ["train", *QUICK, "--out", str(out)])
    monkeypatch.setattr(checkpoint.os, "fsync", real_fsync)
    assert "No space left on device" in line
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]


def test_too_little_free_disk_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    line = one_line_error(capsys, ["train", *QUICK, "--out", str(tmp_path / "run")])
    assert "MiB free" in line and "need about" in line
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()


@pytest.mark.parametrize("out", ["/etc/passwd/x", "/proc/minires-run"])
def test_an_impossible_or_read_only_out_is_refused_before_training(capsys, out):
    assert "cannot be written" in one_line_error(capsys, ["train", *QUICK, "--out", out])


def test_convert_into_a_directory_is_one_line(trained_run, tmp_path, capsys):
    assert "directory" in one_line_error(capsys, ["convert", str(trained_run / "model.safetensors"), str(tmp_path)])


def test_a_corrupt_gzip_is_one_line(tmp_path, capsys):
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / f"{stem}.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
    assert "gzip" in one_line_error(capsys, ["train", "--data", f"mnist:{tmp_path}", "--quiet",
                                             "--out", str(tmp_path / "run")])


def test_a_huge_image_is_refused_from_its_header(tmp_path):
    from PIL import Image
    path = tmp_path / "huge.png"
    Image.new("1", (9000, 9000)).save(path)  # 81 million pixels, a few KiB on disk
    with pytest.raises(DataError, match="9000 x 9000 pixels"):
        data.load_image(str(path), 32)


def test_an_absurd_image_size_is_refused(capsys, tmp_path):
    assert "image_size" in one_line_error(capsys, ["train", *QUICK, "--image-size", "100000",
                                                   "--out", str(tmp_path / "run")])


# --- a run directory belongs to one run --------------------------------------------------------------

def test_a_second_concurrent_run_on_the_same_out_is_refused(tmp_path, capsys):
    with RunDirectory(str(tmp_path / "run")):
        line = one_line_error(capsys, ["train", *QUICK, "--out", str(tmp_path / "run")])
    assert "in use by another minires train" in line and f"pid {os.getpid()}" in line


def test_resume_into_an_out_holding_another_run_is_refused(trained_run, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["train", *QUICK, "--seed", "5", "--out", str(other)]) == 0
    capsys.readouterr()
    before = (other / "checkpoint.safetensors").read_bytes()
    line = one_line_error(capsys, ["train", "--resume", str(trained_run), "--epochs", "2", "--out", str(other)])
    assert "holds another run" in line
    assert (other / "checkpoint.safetensors").read_bytes() == before


def _folder(root, classes, per_class=4, size=8):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in classes:
        os.makedirs(root / c, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_resume_after_the_data_changed_is_refused_naming_the_change(tmp_path, capsys):
    _folder(tmp_path / "photos", ["healthy", "blight"])
    run = tmp_path / "run"
    argv = ["train", "--data", f"folder:{tmp_path / 'photos'}", "--image-size", "8", "--epochs", "1", "--quiet"]
    assert main([*argv, "--out", str(run)]) == 0
    _folder(tmp_path / "photos", ["healthy"], per_class=6)  # two more photos of a known class
    capsys.readouterr()
    line = one_line_error(capsys, ["train", "--resume", str(run), "--epochs", "2"])
    assert "changed since this run started" in line and "--allow-data-change" in line
    assert main(["train", "--resume", str(run), "--epochs", "2", "--allow-data-change", "--quiet"]) == 0
    assert "WARNING: the data set changed" in capsys.readouterr().err
    _folder(tmp_path / "photos", ["rust"])  # a new class: no flag makes that resumable
    line = one_line_error(capsys, ["train", "--resume", str(run), "--epochs", "3", "--allow-data-change"])
    assert "added ['rust']" in line and "cannot continue with other classes" in line


def test_stale_temporary_files_are_removed_at_the_next_start(tmp_path):
    (tmp_path / ".tmp-abc123checkpoint.safetensors").write_bytes(b"half a checkpoint")
    with RunDirectory(str(tmp_path)):
        assert not list(tmp_path.glob(".tmp-*"))


# --- bounded reads ---------------------------------------------------------------------------------

def test_a_huge_sparse_checkpoint_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "sparse.safetensors"
    checkpoint.save({"w": np.ones(3, np.float32)}, path)
    with open(path, "r+b") as f:
        f.truncate(3 * 2**30)  # 3 GiB, almost all a hole
    # The child's own peak from /proc (getrusage's ru_maxrss would carry the parent's peak across fork and exec).
    script = (f"import minires.checkpoint as c\ntry:\n    c.load({str(path)!r})\nexcept c.CheckpointError "
              f"as e:\n    print(e)\nprint(next(line.split()[1] for line in open('/proc/self/status') "
              f"if line.startswith('VmHWM:')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    message, peak_kib = out.strip().rsplit("\n", 1)
    assert "header describes 12 bytes of tensors" in message
    assert int(peak_kib) < 1024 * 1024  # far below the 3 GiB a whole read would take


def test_a_gzip_bomb_is_not_inflated_beyond_its_header(tmp_path):
    header = bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big")  # promises 10 labels...
    path = tmp_path / "labels.gz"
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(10))
        f.write(bytes(200 * 2**20))  # ...and inflates to 200 MiB more
    with pytest.raises(DataError, match=r"the header says \(10,\) = 10 values but the file holds more than 10"):
        data.read_idx(str(path), 1)


def test_a_fifo_in_an_image_folder_is_skipped_not_opened(tmp_path, caplog):
    _folder(tmp_path, ["a", "b"])
    os.mkfifo(tmp_path / "a" / "trap.png")
    bundle = data.image_folder(str(tmp_path), image_size=8)  # would hang forever if the FIFO were opened
    assert len(bundle.train) + len(bundle.test) == 8
    assert "trap.png: not a regular file" in caplog.text


# --- atomic, typed loads ---------------------------------------------------------------------------

def test_a_failed_load_state_dict_changes_nothing():
    model = models.resnet20(seed=0)
    before = {k: v.numpy() for k, v in model.state_dict().items()}  # a copy: state_dict() shares memory
    state = models.resnet20(seed=1).state_dict()
    state["fc.bias"] = state["fc.bias"].astype(np.int32)  # the last key fails, after all others would pass
    with pytest.raises(StateDictError, match="wrong dtypes: fc.bias: checkpoint int32"):
        model.load_state_dict(state)
    for key, value in model.state_dict().items():
        assert np.array_equal(value, before[key]), key


@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.bool_, np.complex64])
def test_non_float_checkpoint_tensors_are_refused_for_float_parameters(dtype):
    model = models.resnet20()
    state = model.state_dict()
    state["conv1.weight"] = state["conv1.weight"].astype(dtype)
    with pytest.raises(StateDictError, match=f"conv1.weight: checkpoint {np.dtype(dtype)}"):
        model.load_state_dict(state)


@pytest.mark.parametrize("key, value, words", [("conv1.weight", np.nan, "non-finite values: conv1.weight"),
                                               ("bn1.running_var", -1.0, "negative running variances: bn1")])
def test_non_finite_weights_and_negative_variances_are_refused_unless_allowed(key, value, words):
    model = models.resnet20()
    state = model.state_dict()
    state[key] = state[key].numpy()  # a copy, to change
    state[key].flat[0] = value
    with pytest.raises(StateDictError, match=words):
        model.load_state_dict(state)
    model.load_state_dict(state, allow_nonfinite=True)


# --- silent wrong data ------------------------------------------------------------------------------

def test_a_16_bit_png_is_scaled_by_its_real_range(tmp_path):
    from PIL import Image
    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    loaded = data.load_image(str(tmp_path / "deep.png"), 8, mode="L")[0]
    np.testing.assert_allclose(loaded, ramp / 65535.0, atol=1 / 255)
    assert (loaded >= 0.999).mean() < 0.05  # clipping to 8 bits used to put 98% of the pixels at 1.0


def test_an_mnist_test_set_of_another_image_size_is_refused(tmp_path):
    def idx(name, array):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
        (tmp_path / name).write_bytes(header + array.astype(np.uint8).tobytes())
    idx("train-images-idx3-ubyte", np.zeros((4, 28, 28)))
    idx("train-labels-idx1-ubyte", np.arange(4))
    idx("t10k-images-idx3-ubyte", np.zeros((2, 20, 20)))
    idx("t10k-labels-idx1-ubyte", np.arange(2))
    with pytest.raises(DataError, match=r"test images are \(20, 20\) but the training images \(28, 28\)"):
        data.mnist(str(tmp_path))


def test_a_test_class_that_differs_from_train_only_by_case_is_refused(tmp_path):
    _folder(tmp_path / "train", ["blight", "healthy"])
    _folder(tmp_path / "test", ["Blight", "healthy"])
    with pytest.raises(DataError, match=r"test/ has classes that train/ does not: Blight \(train has blight\)"):
        data.image_folder(str(tmp_path), image_size=8)


def test_class_folders_that_differ_only_by_case_are_refused(tmp_path):
    _folder(tmp_path, ["Rust", "rust", "healthy"])
    with pytest.raises(DataError, match="differ only by case: Rust / rust"):
        data.image_folder(str(tmp_path), image_size=8)


@pytest.mark.parametrize("array", [np.array(["a"]), np.array([b"x"]), np.array([object()]),
                                   np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([1 + 2j])])
def test_tensor_refuses_non_numeric_dtypes(array):
    with pytest.raises(DTypeError, match=re.escape(f"dtype {array.dtype} cannot be a tensor")):
        mr.tensor(array)


def test_conv2d_given_a_numpy_weight_names_the_real_problem():
    x = mr.tensor(np.ones((1, 1, 3, 3), np.float32))
    with pytest.raises(MiniresError, match="conv2d: input 2 is a numpy.ndarray, not a Tensor"):
        mr.F.conv2d(x, np.ones((1, 1, 1, 1), np.float32))
