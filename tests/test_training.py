"""Training end to end: learning, exact resume, and every way a run can stop without losing anything."""
import collections
import json
import os
import signal
import sys

import numpy as np
import pytest

import minires as mr
from minires import data
from minires.checkpoint import CheckpointError
from minires.cli import main
from minires.training import Callbacks, TrainConfig, Trainer, TrainingDiverged, TrainingInterrupted
from minires.training import trainer as trainer_module
from minires.training.stop_requests import StopRequests
from minires.training.metrics import COLUMNS


def small_bundle():
    return data.synthetic(train_size=96, test_size=32, classes=3, size=8, channels=1, seed=1)


CONFIG = dict(model="resnet20", data="synthetic", epochs=2, batch_size=32, lr=0.05, seed=4)


def weights(trainer):
    return {k: v.numpy() for k, v in trainer.model.state_dict().items()}  # a snapshot, not the live tensors


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
    """Ctrl-C as a user sends it (SIGINT), during the given batch."""

    def __init__(self, batches):
        self.left = batches

    def on_batch(self, loss, accuracy):
        self.left -= 1
        if self.left == 0:
            signal.raise_signal(signal.SIGINT)


def test_an_interrupt_mid_epoch_saves_and_resumes_exactly(tmp_path):
    before = signal.getsignal(signal.SIGINT)  # the default, or SIG_IGN in a job started with `cmd &`
    straight = Trainer(TrainConfig(**CONFIG), str(tmp_path / "a"), bundle=small_bundle())
    straight.fit()
    interrupted = Trainer(TrainConfig(**CONFIG), str(tmp_path / "b"), InterruptAt(4), bundle=small_bundle())
    with pytest.raises(TrainingInterrupted, match=r"SIGINT received: stopped after epoch 1 \+ 1 batches \(step 4\)"):
        interrupted.fit()
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (1, 1, 4)  # 3 batches per epoch
    resumed = Trainer.resume(str(tmp_path / "b"), bundle=small_bundle())
    resumed.fit()
    assert_same_weights(weights(straight), weights(resumed))
    assert signal.getsignal(signal.SIGINT) is before  # fit() gave the handler back


TINY = dict(model="resnet20", data="synthetic", epochs=2, batch_size=16, lr=0.05, seed=2)


def tiny_bundle():
    return data.synthetic(train_size=32, test_size=16, classes=2, size=8, channels=1, seed=3)


class SignalAtLine:
    """A tracer that raises SIGINT (or SIGTERM) the ``occurrence``-th time trainer.py executes ``line`` while
    fit() is listening for signals (outside it, a signal means what it always means: stop the process)."""

    def __init__(self, line, occurrence, number):
        self.line, self.left, self.number, self.lines = line, occurrence, number, collections.Counter()

    def __call__(self, frame, event, arg):
        if frame.f_code.co_filename != trainer_module.__file__:
            return None
        if event == "line" and isinstance(getattr(signal.getsignal(signal.SIGINT), "__self__", None), StopRequests):
            self.lines[frame.f_lineno] += 1
            if frame.f_lineno == self.line:
                self.left -= 1
                if self.left == 0:
                    signal.raise_signal(self.number)
        return self


def inject_signals_everywhere(tmp_path, mid_run):
    """SIGINT/SIGTERM injected at every line the training loop executes (the first time it runs, and with
    ``mid_run`` also halfway through the lines that run more than twice): the run saves at its next safe
    point, and resuming it ends with the same weights, bit for bit, and the same history as a run that was
    never interrupted. Returns (positions tried, positions that stopped and resumed)."""
    straight = Trainer(TrainConfig(**TINY), str(tmp_path / "straight"), bundle=tiny_bundle())
    census = SignalAtLine(line=-1, occurrence=0, number=signal.SIGINT)
    sys.settrace(census)
    try:
        straight.fit()
    finally:
        sys.settrace(None)
    expected = weights(straight)
    history = lambda t: [{k: v for k, v in row.items() if k != "seconds"} for row in t.state["history"]]  # noqa
    positions = [(line, 1) for line in sorted(census.lines)]
    if mid_run:
        positions = [(line, count // 2 + 1) for line, count in sorted(census.lines.items()) if count > 2]
    proven = 0
    for index, (line, occurrence) in enumerate(positions):
        directory = str(tmp_path / f"run{index}")
        trainer = Trainer(TrainConfig(**TINY), directory, bundle=tiny_bundle())
        sys.settrace(SignalAtLine(line, occurrence, signal.SIGTERM if index % 2 else signal.SIGINT))
        try:
            trainer.fit()
            stopped = False
        except TrainingInterrupted:
            stopped = True
        finally:
            sys.settrace(None)
        if stopped:
            trainer = Trainer.resume(directory, bundle=tiny_bundle())
            trainer.fit()
        assert_same_weights(expected, weights(trainer))
        assert history(trainer) == history(straight), (line, occurrence)
        proven += stopped
    print(f"signal injected at {len(positions)} positions; {proven} stopped, saved and resumed bit-identically")
    return len(positions), proven


@pytest.fixture
def no_curves(monkeypatch):
    monkeypatch.setattr(trainer_module, "plot_curves", lambda *args, **kwargs: None)  # slow, and not the point


def test_a_signal_at_any_line_of_the_loop_resumes_bit_identically(tmp_path, no_curves):
    tried, proven = inject_signals_everywhere(tmp_path, mid_run=False)
    assert tried > 30 and proven >= tried - 2  # a signal after the last safe point just lets the run finish


@pytest.mark.slow
def test_a_signal_halfway_through_any_repeated_line_resumes_bit_identically(tmp_path, no_curves):
    tried, proven = inject_signals_everywhere(tmp_path, mid_run=True)
    assert tried > 30 and proven == tried


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    class TwiceAt(Callbacks):
        def on_batch(self, loss, accuracy):
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)

    trainer = Trainer(TrainConfig(**CONFIG), str(tmp_path), TwiceAt(), bundle=small_bundle())
    with pytest.raises(KeyboardInterrupt) as info:
        trainer.fit()
    assert not isinstance(info.value, TrainingInterrupted)
    assert not (tmp_path / "checkpoint.safetensors").exists()  # nothing half-done was written


class PoisonAfterFirstEpoch(Callbacks):
    def __init__(self):
        self.trainer = None

    def on_epoch_end(self, row):
        self.trainer.model.fc.weight.array[0, 0] = np.nan  # a diverged update, as a huge lr would cause


def test_a_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    callbacks = PoisonAfterFirstEpoch()
    trainer = Trainer(TrainConfig(**CONFIG), str(tmp_path), callbacks, bundle=small_bundle())
    callbacks.trainer = trainer
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, batch 1 \(step 4\).*after epoch 1"):
        trainer.fit()
    saved = mr.load(tmp_path / "model.safetensors")
    assert all(np.isfinite(v).all() for v in saved.values())
    assert Trainer.resume(str(tmp_path), bundle=small_bundle()).state["epoch"] == 1


class PoisonRunningVariance(Callbacks):
    """A non-finite running statistic: the training-mode loss does not see it, the step check must."""

    def __init__(self):
        self.trainer, self.batches = None, 0

    def on_batch(self, loss, accuracy):
        self.batches += 1
        if self.batches == 4:  # the first batch of epoch 2: the next step must notice
            self.trainer.model.layer2[1].bn1.running_var.array[3] = np.inf


def test_a_non_finite_running_statistic_stops_training_naming_it(tmp_path):
    callbacks = PoisonRunningVariance()
    trainer = Trainer(TrainConfig(**CONFIG), str(tmp_path), callbacks, bundle=small_bundle())
    callbacks.trainer = trainer
    with pytest.raises(TrainingDiverged, match=r"layer2\.1\.bn1\.running_var became non-finite at epoch 2, "
                                               r"batch 2 \(step 5\).*after epoch 1"):
        trainer.fit()
    for name in ("checkpoint.safetensors", "model.safetensors"):
        assert all(np.isfinite(v).all() for v in mr.load(tmp_path / name).values()), name


def test_a_diverging_run_exits_non_zero_and_keeps_only_finite_checkpoints(tmp_path, capsys):
    """The review's case: a huge learning rate. The run must not end "done"."""
    out = tmp_path / "run"
    code = main(["train", "--data", "synthetic", "--lr", "1e6", "--schedule", "constant", "--epochs", "3",
                 "--batch-size", "128", "--quiet", "--out", str(out)])
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("minires train: ") and ("non-finite" in error or "loss became" in error), error
    for name in ("checkpoint.safetensors", "model.safetensors"):
        if (out / name).exists():
            assert all(np.isfinite(v).all() for v in mr.load(out / name).values()), name


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
    err = capsys.readouterr().err
    assert "no run directory" in err and "does not exist" in err
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "empty")]) == 2
    assert "no training checkpoint" in capsys.readouterr().err


def test_ctrl_c_before_the_first_step_says_nothing_was_saved(tmp_path, capsys, monkeypatch):
    """A Ctrl-C while the data and model are still being built: no "at once" (that is a second Ctrl-C's
    wording), and --resume of the folder that never came to be says it does not exist."""
    import minires.cli.train as cli_train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_train, "Trainer", interrupted)
    assert main(["train", "--quiet", "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "stopped before the first step; nothing was saved" in err and "at once" not in err
    monkeypatch.undo()
    assert main(["train", "--quiet", "--resume", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"no run directory {str(tmp_path / 'run')!r}: it does not exist" in err


def test_training_runs_channels_last_by_default_and_old_runs_resume_nchw():
    assert TrainConfig().memory_format == "channels_last"
    saved_before_the_field = {k: v for k, v in TrainConfig().to_dict().items() if k != "memory_format"}
    assert TrainConfig.from_dict(saved_before_the_field).memory_format == "contiguous_format"
    with pytest.raises(mr.errors.ArgumentError, match="memory_format must be one of"):
        TrainConfig(memory_format="nhwc")


@pytest.mark.parametrize("memory_format", ["channels_last", "contiguous_format"])
def test_the_trainer_lays_the_model_out_in_the_configured_format(tmp_path, memory_format):
    trainer = Trainer(TrainConfig(epochs=1, memory_format=memory_format), str(tmp_path))
    conv = trainer.model.layer1[0].conv1.weight
    assert conv.is_contiguous(memory_format=memory_format)
