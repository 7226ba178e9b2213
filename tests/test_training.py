"""Training end to end: learning, exact resume, and every way a run can stop without losing anything."""
import json
import os

import numpy as np
import pytest

import minires as mr
from minires import data
from minires.checkpoint import CheckpointError
from minires.cli import main
from minires.training import Callbacks, TrainConfig, Trainer, TrainingDiverged
from minires.training.metrics import COLUMNS


def small_bundle():
    return data.synthetic(train_size=96, test_size=32, classes=3, size=8, channels=1, seed=1)


CONFIG = dict(model="resnet20", data="synthetic", epochs=2, batch_size=32, lr=0.05, seed=4)


def weights(trainer):
    return trainer.model.state_dict()


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_two_epochs_equal_one_plus_resume_plus_one_bitwise(tmp_path):
    straight = Trainer(TrainConfig(**CONFIG), str(tmp_path / "straight"), bundle=small_bundle())
    straight.fit()
    first = Trainer(TrainConfig(**CONFIG), str(tmp_path / "split"), bundle=small_bundle())
    first.fit(stop_after_epochs=1)
    resumed = Trainer.resume(str(tmp_path / "split"), bundle=small_bundle())
    assert resumed.state["epoch"] == 1
    resumed.fit()
    assert_same_weights(weights(straight), weights(resumed))
    history = lambda t: [{k: v for k, v in row.items() if k != "seconds"} for row in t.state["history"]]  # noqa
    assert history(straight) == history(resumed)


class InterruptAt(Callbacks):
    def __init__(self, batches):
        self.left = batches

    def on_batch(self, loss, accuracy):
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def test_an_interrupt_mid_epoch_saves_and_resumes_exactly(tmp_path):
    straight = Trainer(TrainConfig(**CONFIG), str(tmp_path / "a"), bundle=small_bundle())
    straight.fit()
    interrupted = Trainer(TrainConfig(**CONFIG), str(tmp_path / "b"), InterruptAt(4), bundle=small_bundle())
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (1, 1, 4)  # 3 batches per epoch
    resumed = Trainer.resume(str(tmp_path / "b"), bundle=small_bundle())
    resumed.fit()
    assert_same_weights(weights(straight), weights(resumed))


class PoisonAfterFirstEpoch(Callbacks):
    def __init__(self):
        self.trainer = None

    def on_epoch_end(self, row):
        self.trainer.model.fc.weight.data[0, 0] = np.nan  # a diverged update, as a huge lr would cause


def test_a_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    callbacks = PoisonAfterFirstEpoch()
    trainer = Trainer(TrainConfig(**CONFIG), str(tmp_path), callbacks, bundle=small_bundle())
    callbacks.trainer = trainer
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, batch 1 \(step 4\).*after epoch 1"):
        trainer.fit()
    saved = mr.load(tmp_path / "model.safetensors")
    assert all(np.isfinite(v).all() for v in saved.values())
    assert Trainer.resume(str(tmp_path), bundle=small_bundle()).state["epoch"] == 1


def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one(tmp_path, monkeypatch):
    trainer = Trainer(TrainConfig(**CONFIG), str(tmp_path), bundle=small_bundle())
    trainer.fit(stop_after_epochs=1)
    good = (tmp_path / "checkpoint.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        trainer.fit()
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == good
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
    assert Trainer.resume(str(tmp_path), bundle=small_bundle()).state["epoch"] == 1


def test_a_truncated_checkpoint_gives_a_clear_error(tmp_path):
    Trainer(TrainConfig(**CONFIG), str(tmp_path), bundle=small_bundle()).fit(stop_after_epochs=1)
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="checkpoint.safetensors.*not a valid safetensors file"):
        Trainer.resume(str(tmp_path), bundle=small_bundle())


def test_a_short_digits_run_learns(tmp_path):
    trainer = Trainer(TrainConfig(epochs=3), str(tmp_path))
    summary = trainer.fit()
    assert summary["test_accuracy"] > 0.6  # chance is 0.1
    rows = trainer.state["history"]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    csv = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv[0].split(",") == list(COLUMNS) and len(csv) == 4  # a header and one line per epoch
    assert json.loads((tmp_path / "metrics.json").read_text())[2]["epoch"] == 3
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_train_evaluate_and_predict_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", "synthetic", "--epochs", "1", "--batch-size", "128", "--quiet", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "done: 1 epochs" in printed and "test accuracy" in printed
    assert main(args) == 2 and "already holds a training checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--lr", "0.5", "--quiet"]) == 2
    assert "keeps its configuration" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert json.loads((out / "state.json").read_text())["epoch"] == 2
    assert main(["evaluate", "--checkpoint", str(out)]) == 0
    assert "accuracy" in capsys.readouterr().out
    from PIL import Image
    Image.new("RGB", (16, 16), (10, 200, 30)).save(tmp_path / "x.png")
    assert main(["predict", "--checkpoint", str(out), str(tmp_path / "x.png"), "--top", "2"]) == 0
    assert capsys.readouterr().out.count("%") == 2


def test_bad_training_input_is_named(tmp_path, capsys):
    assert main(["train", "--data", f"cifar10:{tmp_path}", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "data_batch_1.bin" in capsys.readouterr().err
    assert main(["train", "--model", "resnet19", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "known models" in capsys.readouterr().err
    assert main(["train", "--lr", "-1", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "lr must be positive" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "no training checkpoint" in capsys.readouterr().err
