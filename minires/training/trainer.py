"""The training loop: epochs of SGD (or Adam) steps, a test pass per epoch, a checkpoint per epoch.

Resuming is exact: the data order and augmentation of every batch derive from (seed, epoch, batch) alone
(see minires.data.loader), and the checkpoint holds the model, the optimiser state, the schedule and the
position (epoch, batch), so a run stopped anywhere between two steps and resumed ends with the same weights,
bit for bit on the CPU, as one that never stopped.

The library never prints: progress goes to the ``callbacks`` object (the CLI shows a tqdm bar with it).
"""
import logging
import os
import time

import numpy as np

from .. import backend
from .. import functional as F
from ..grad_mode import no_grad
from ..tensor import Tensor
from . import build
from .config import TrainConfig
from .metrics import plot_curves, write_metrics
from .run_checkpoint import read_run, restore_run, save_run

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was left as it was."""


class Callbacks:
    """Override what you need: on_epoch_start(epoch, batches, first_batch), on_batch(loss, accuracy),
    on_epoch_end(row)."""

    def on_epoch_start(self, epoch, batches, first_batch):
        pass

    def on_batch(self, loss, accuracy):
        pass

    def on_epoch_end(self, row):
        pass


class Trainer:
    def __init__(self, config, directory, callbacks=None, bundle=None):
        self.config, self.directory = config, directory
        self.callbacks = callbacks or Callbacks()
        self.bundle = bundle or build.build_data(config)
        channels = self.bundle.input_shape[0]
        self.model = build.build_model(config, len(self.bundle.classes), channels).to(config.device)
        self.optimizer = build.build_optimizer(config, self.model)
        self.scheduler = build.build_schedule(config, self.optimizer)
        self.train_loader, self.test_loader = build.build_loaders(config, self.bundle)
        self.state = {"epoch": 0, "batch": 0, "step": 0, "history": [], "partial": _empty_partial(),
                      "config": config.to_dict(), "data": self.bundle.describe()}
        self._in_step = False

    @classmethod
    def resume(cls, directory, epochs=None, callbacks=None, bundle=None):
        """Continue the run saved in ``directory`` (optionally for more epochs than first planned)."""
        tensors, run_state = read_run(directory)
        config = TrainConfig.from_dict(run_state["config"])
        if epochs is not None:
            if epochs < run_state["epoch"]:
                raise ValueError(f"resume: the run already finished {run_state['epoch']} epochs; --epochs "
                                 f"{epochs} is fewer")
            config.epochs = epochs
        trainer = cls(config, directory, callbacks, bundle)
        restore_run(tensors, run_state, trainer.model, trainer.optimizer, trainer.scheduler)
        for key in ("epoch", "batch", "step", "history", "partial"):
            trainer.state[key] = run_state[key]
        return trainer

    # --- the loop ---------------------------------------------------------------------------------
    def fit(self, stop_after_epochs=None):
        """Train until config.epochs (or for ``stop_after_epochs`` more epochs); return a summary dict."""
        started, done = time.perf_counter(), 0
        try:
            while self.state["epoch"] < self.config.epochs:
                if stop_after_epochs is not None and done >= stop_after_epochs:
                    break
                self.run_epoch(self.state["epoch"])
                done += 1
        except KeyboardInterrupt:
            if not self._in_step:  # between two steps the state is consistent: keep it
                self.save()
            raise
        return self.summary(time.perf_counter() - started)

    def run_epoch(self, epoch):
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        self.model.train()
        first = self.state["batch"]
        self.callbacks.on_epoch_start(epoch, len(self.train_loader), first)
        for batch, (images, labels) in enumerate(self.train_loader.batches(epoch, start=first), start=first):
            loss, correct = self.train_step(images, labels, epoch, batch)
            partial = self.state["partial"]
            partial["loss_sum"] += loss * len(labels)
            partial["correct"] += correct
            partial["seen"] += len(labels)
            self.state["batch"], self.state["step"] = batch + 1, self.state["step"] + 1
            self.callbacks.on_batch(partial["loss_sum"] / partial["seen"], partial["correct"] / partial["seen"])
        test_loss, test_accuracy = self.evaluate()
        partial = self.state["partial"]
        row = {"epoch": epoch + 1, "step": self.state["step"], "lr": lr,
               "train_loss": partial["loss_sum"] / partial["seen"], "train_accuracy": partial["correct"] / partial["seen"],
               "test_loss": test_loss, "test_accuracy": test_accuracy,
               "seconds": round(time.perf_counter() - started, 3)}
        self.state["history"].append(row)
        self.scheduler.step()
        self.state.update(epoch=epoch + 1, batch=0, partial=_empty_partial())
        self.save()
        self.callbacks.on_epoch_end(row)
        log.info("epoch %d: %s", epoch + 1, row)
        return row

    def train_step(self, images, labels, epoch, batch):
        device = self.config.device
        self._in_step = True
        logits = self.model(Tensor(images, device=device))
        loss = F.cross_entropy(logits, backend.to_device(labels, device))
        value = loss.item()
        if not np.isfinite(value):
            self._in_step = False
            kept = (f"the last good checkpoint (after epoch {self.state['epoch']}) is kept in {self.directory}"
                    if self.state["epoch"] else "no checkpoint had been written yet")
            raise TrainingDiverged(f"the loss became {value} at epoch {epoch + 1}, batch {batch + 1} (step "
                                   f"{self.state['step'] + 1}); training stopped and {kept}. Try a smaller --lr.")
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self._in_step = False
        correct = int((backend.to_numpy(logits.data).argmax(axis=1) == labels).sum())
        return value, correct

    def evaluate(self, loader=None):
        """(mean cross-entropy, accuracy) on the test split (or ``loader``), in evaluation mode."""
        loader = loader or self.test_loader
        return evaluate_model(self.model, loader, self.config.device)

    # --- persistence ------------------------------------------------------------------------------
    def save(self):
        os.makedirs(self.directory, exist_ok=True)
        save_run(self.directory, self.model, self.optimizer, self.scheduler, self.state)
        if self.state["history"]:
            write_metrics(self.directory, self.state["history"])

    def summary(self, seconds):
        history = self.state["history"]
        best = max(history, key=lambda row: row["test_accuracy"]) if history else None
        curves = plot_curves(self.directory, history, f"{self.config.model} on {self.config.data}") \
            if history else None
        return {"epochs": self.state["epoch"], "steps": self.state["step"], "seconds": seconds,
                "test_accuracy": history[-1]["test_accuracy"] if history else None,
                "test_loss": history[-1]["test_loss"] if history else None,
                "best_accuracy": best["test_accuracy"] if best else None, "best_epoch": best["epoch"] if best else None,
                "directory": self.directory, "curves": curves}


def evaluate_model(model, loader, device="cpu"):
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with no_grad():
        for images, labels in loader.batches(0):
            logits = model(Tensor(images, device=device))
            total_loss += F.cross_entropy(logits, backend.to_device(labels, device), reduction="sum").item()
            correct += int((backend.to_numpy(logits.data).argmax(axis=1) == labels).sum())
            seen += len(labels)
    model.train(was_training)
    return total_loss / seen, correct / seen


def _empty_partial():
    return {"loss_sum": 0.0, "correct": 0, "seen": 0}
