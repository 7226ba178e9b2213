"""The training loop: epochs of SGD (or Adam) steps, a test pass per epoch, a checkpoint per epoch.

Resuming is exact: the data order and augmentation of every batch derive from (seed, epoch, batch) alone
(see minires.data.loader), and the checkpoint holds the model, the optimiser state, the schedule and the
position (epoch, batch), so a run stopped anywhere between two steps and resumed ends with the same weights,
bit for bit on the CPU, as one that never stopped. Ctrl-C and SIGTERM are acted on between steps only
(stop_requests.py), so the state saved on a signal is always such a between-steps state.

Non-finite values never pass silently: after every step the loss, every parameter and every batch-norm
running statistic must be finite, or training stops naming the step and the first offending tensor, and no
checkpoint is written from that state (the last one on disk was written from a finite one).

The library never prints: progress goes to the ``callbacks`` object (the CLI shows a tqdm bar with it).
"""
import contextlib
import logging
import os
import time
import uuid

import numpy as np

from .. import backend, distributed, kernels
from .. import functional as F
from .. import nn
from ..errors import ArgumentError, MiniresError
from ..grad_mode import no_grad
from ..tensor import Tensor
from ..allocator import keep_freed_memory
from ..threads import one_pool
from ..data.bundle import data_changes
from . import build
from .config import TrainConfig
from .metrics import plot_curves, write_metrics
from .run_checkpoint import read_run, restore_run, save_run
from .run_directory import RunDirectory
from .stop_requests import StopRequests

log = logging.getLogger(__name__)


class TrainingDiverged(MiniresError, RuntimeError):
    """The loss, a parameter or a running statistic became NaN or infinite; the last good checkpoint was left
    as it was."""


class TrainingInterrupted(KeyboardInterrupt):
    """A stop was asked for (Ctrl-C, SIGTERM); the run was saved at a step boundary and can be resumed."""


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
        self.world = distributed.world()  # one process unless started by mpiexec
        self.model = nn.fuse(build.build_model(config, len(self.bundle.classes), channels).to(
            config.device, memory_format=config.memory_format))  # the convolutions pull each batch over
        # the step runs the replica: gradients averaged over the ranks (checkpoints hold self.model itself)
        self._replica = distributed.DistributedDataParallel(self.model, world=self.world) \
            if self.world.size > 1 else self.model
        self.optimizer = build.build_optimizer(config, self.model)
        self.scheduler = build.build_schedule(config, self.optimizer)
        self.train_loader, self.test_loader = build.build_loaders(config, self.bundle, self.world)
        self.state = {"epoch": 0, "batch": 0, "step": 0, "history": [], "partial": _empty_partial(),
                      "config": config.to_dict(), "data": self.bundle.describe(), "run_id": uuid.uuid4().hex}
        self._stop = None  # the StopRequests of a running fit()
        self._stop_everywhere = None  # with several ranks: a stop asked for on any of them (the step's report)
        self._watched = watched_tensors(self.model)  # checked for NaN/inf after every step
        self.data_changes = []  # set by resume(allow_data_change=True) when the data set changed

    @classmethod
    def resume(cls, directory, epochs=None, callbacks=None, bundle=None, allow_data_change=False):
        """Continue the run saved in ``directory`` (optionally for more epochs than first planned). A data set
        that changed since the run started is refused, naming the change, unless ``allow_data_change``."""
        tensors, run_state = read_run(directory)
        config = TrainConfig.from_dict(run_state["config"])
        if epochs is not None:
            if epochs < run_state["epoch"]:
                raise ArgumentError(f"resume: the run already finished {run_state['epoch']} epochs; --epochs "
                                 f"{epochs} is fewer")
            config.epochs = epochs
        trainer = cls(config, directory, callbacks, bundle)
        changes = data_changes(run_state["data"], trainer.state["data"])
        if changes and run_state["data"]["classes"] != trainer.state["data"]["classes"]:
            raise ArgumentError(f"the data set {config.data!r} changed since this run started: "
                                f"{'; '.join(changes)}. A trained model cannot continue with other classes; "
                                f"start a new run.")
        if changes and not allow_data_change:
            raise ArgumentError(f"the data set {config.data!r} changed since this run started: "
                                f"{'; '.join(changes)}. Resume with --allow-data-change to continue on the new "
                                f"data anyway.")
        if changes:
            log.warning("resuming %s on changed data: %s", directory, "; ".join(changes))
        restore_run(tensors, run_state, trainer.model, trainer.optimizer, trainer.scheduler)
        for key in ("epoch", "batch", "step", "history", "partial"):
            trainer.state[key] = run_state[key]
        trainer.state["run_id"] = run_state.get("run_id", trainer.state["run_id"])
        trainer.data_changes = changes
        return trainer

    # --- the loop ---------------------------------------------------------------------------------
    def fit(self, stop_after_epochs=None):
        """Train until config.epochs (or for ``stop_after_epochs`` more epochs); return a summary dict."""
        started, done = time.perf_counter(), 0
        # NumPy's overflow/invalid warnings are silenced: the step check reports a non-finite value itself,
        # once, naming the step and the tensor. numba's thread pool alone runs the steps (minires.threads);
        # the activations freed by one step are reused by the next (minires.allocator).
        directory = RunDirectory(self.directory, self.checkpoint_bytes()) if self.world.rank == 0 else \
            contextlib.nullcontext()  # rank 0 alone writes the run
        with directory, StopRequests() as self._stop, \
                np.errstate(over="ignore", invalid="ignore", divide="ignore"), one_pool(), keep_freed_memory():
            while self.state["epoch"] < self.config.epochs:
                if stop_after_epochs is not None and done >= stop_after_epochs:
                    break
                self.run_epoch(self.state["epoch"])
                done += 1
        self._stop = None
        return self.summary(time.perf_counter() - started)

    def run_epoch(self, epoch):
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        self.model.train()
        first = self.state["batch"]
        self.callbacks.on_epoch_start(epoch, len(self.train_loader), first)
        for batch, (images, labels) in enumerate(self.train_loader.batches(epoch, start=first), start=first):
            loss, correct, seen = self.train_step(images, labels, epoch, batch)
            partial = self.state["partial"]
            partial["loss_sum"] += loss * seen
            partial["correct"] += correct
            partial["seen"] += seen
            self.state["batch"], self.state["step"] = batch + 1, self.state["step"] + 1
            self.callbacks.on_batch(partial["loss_sum"] / partial["seen"], partial["correct"] / partial["seen"])
            self._stop_if_requested()  # a safe point: the step and its bookkeeping are complete
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
        self._stop_if_requested(saved=True)  # a safe point: the epoch is complete and saved
        return row

    def checkpoint_bytes(self):
        """A generous estimate of the disk the run directory needs: the checkpoint (weights and up to two
        optimiser buffers per parameter), model.safetensors, and a second copy of each during its atomic
        write."""
        weights = sum(v.nbytes for v in self.model.state_dict().values())
        return 2 * (3 * weights + weights) + 2**20

    def _stop_if_requested(self, saved=False):
        requested = None if self._stop is None else self._stop.requested
        if self.world.size > 1:  # every rank stops at the same step boundary, or none does
            requested = self._stop_everywhere
        if requested is None:
            return
        if not saved:
            self.save()
        raise TrainingInterrupted(f"{requested} received: stopped after epoch {self.state['epoch']} "
                                  f"+ {self.state['batch']} batches (step {self.state['step']}) and saved in "
                                  f"{self.directory}; continue with --resume {self.directory}")

    def train_step(self, images, labels, epoch, batch):
        """One SGD step on this rank's batch; (mean loss, correct predictions, images) over every rank's
        batch. The step reads the device once, at its end (step_report), and with several ranks shares one
        small allreduce (the loss, the counts, a non-finite flag, a stop request): a non-finite value on any
        rank stops every rank then, before anything is saved."""
        device = self.config.device
        logits = self._replica(Tensor(images, device=device))
        targets = backend.to_device(labels, device)
        loss = F.cross_entropy(logits, targets)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        value, correct, bad = step_report(loss, logits, targets, self._watched)
        seen = len(labels)
        if self.world.size > 1:
            value, correct, seen, bad = self._shared_report(value, correct, seen, bad)
        if not np.isfinite(value):
            self._diverged(f"the loss became {value}", epoch, batch)
        if bad is not None:
            self._diverged(f"{bad} became non-finite", epoch, batch)
        return value, correct, seen

    def _shared_report(self, value, correct, seen, bad):
        """The step's numbers summed over the ranks (one allreduce of six values)."""
        stop = self._stop is not None and self._stop.requested is not None
        finite = np.isfinite(value)
        shared = self.world.all_reduce(np.array([value * seen if finite else 0.0, 0.0 if finite else 1.0, correct,
                                                 seen, bad is not None, stop], np.float64))
        self._stop_everywhere = "a stop request (on some rank)" if shared[5] else None
        value = np.nan if shared[1] else shared[0] / shared[3]
        if shared[4] and bad is None:
            bad = "a parameter or running statistic on another rank"
        return value, int(shared[2]), int(shared[3]), bad

    def _diverged(self, what, epoch, batch):
        kept = (f"the last good checkpoint (after epoch {self.state['epoch']}) is kept in {self.directory}"
                if self.state["epoch"] else "no checkpoint had been written yet")
        raise TrainingDiverged(f"{what} at epoch {epoch + 1}, batch {batch + 1} (step {self.state['step'] + 1}); "
                               f"training stopped and {kept}. Try a smaller --lr.")

    def evaluate(self, loader=None):
        """(mean cross-entropy, accuracy) on the test split (or ``loader``), in evaluation mode."""
        loader = loader or self.test_loader
        return evaluate_model(self.model, loader, self.config.device)

    # --- persistence ------------------------------------------------------------------------------
    def save(self):
        if self.world.rank != 0:  # the ranks hold the same weights; rank 0 writes them
            return
        os.makedirs(self.directory, exist_ok=True)
        save_run(self.directory, self.model, self.optimizer, self.scheduler, self.state)
        if self.state["history"]:
            write_metrics(self.directory, self.state["history"])

    def summary(self, seconds):
        history = self.state["history"]
        best = max(history, key=lambda row: row["test_accuracy"]) if history else None
        curves = plot_curves(self.directory, history, f"{self.config.model} on {self.config.data}") \
            if history and self.world.rank == 0 else None  # rank 0 alone writes the run
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
            correct += int((backend.to_numpy(logits.array).argmax(axis=1) == labels).sum())
            seen += len(labels)
    model.train(was_training)
    return total_loss / seen, correct / seen


def watched_tensors(model):
    """(name, tensor) for every parameter and batch-norm running statistic: what a step must keep finite.
    Listed once: steps update these tensors in place."""
    return list(model.named_parameters()) + [(name, buffer) for name, buffer in model.named_buffers()
                                             if name.endswith(("running_mean", "running_var"))]


def step_report(loss, logits, labels, watched):
    """(loss value, correct predictions, name of the first non-finite watched tensor or None) after a step.
    The loss, the count of correct predictions (labels: the targets on the logits' device) and each watched
    tensor's count of NaN/inf values travel in one small array: on a GPU the step's only wait for the device."""
    xp = backend.get_array_module(loss.array)
    counts = kernels.count_non_finite([t.array for _, t in watched]) if watched else xp.zeros(0)
    correct = (logits.array.argmax(axis=1) == labels).sum()
    report = xp.concatenate([loss.array.reshape(1).astype(xp.float64), correct.reshape(1).astype(xp.float64),
                             counts.astype(xp.float64)])
    value, correct, *bad = backend.to_numpy(report).tolist()
    first_bad = next((name for (name, _), count in zip(watched, bad) if count), None)
    return value, int(correct), first_bad


def _empty_partial():
    return {"loss_sum": 0.0, "correct": 0, "seen": 0}
