"""``minires train``: train a model on a data set, with a progress bar, metrics, curves and checkpoints."""
import contextlib
import dataclasses
import os
import sys
import traceback

from .. import data, distributed, models
from ..errors import ArgumentError, MiniresError
from ..training import TrainConfig, Trainer, TrainingDiverged, TrainingInterrupted
from ..training.config import OPTIMIZERS, SCHEDULES
from ..training.run_checkpoint import CHECKPOINT, read_run
from .output import USAGE, describe, fail
from .paths import user_path
from .progress import ProgressBars

DEFAULTS = TrainConfig()
# flag -> (config field, type, help)
OPTIONS = {
    "--model": ("model", str, f"model name ({', '.join(models.names())})"),
    "--data": ("data", str, f"data set: {', '.join(data.SPECS)}"),
    "--epochs": ("epochs", int, "number of epochs"),
    "--batch-size": ("batch_size", int, "images per step (the global batch: under mpiexec -n N each rank takes "
                                        "1/N of it)"),
    "--optimizer": ("optimizer", str, f"one of {', '.join(OPTIMIZERS)}"),
    "--lr": ("lr", float, "learning rate (peak, after any warm-up)"),
    "--momentum": ("momentum", float, "SGD momentum (Nesterov when > 0)"),
    "--weight-decay": ("weight_decay", float, "L2 penalty on conv/fc weights (none on BN and biases)"),
    "--schedule": ("schedule", str, f"learning-rate schedule: {', '.join(SCHEDULES)}"),
    "--warmup": ("warmup_epochs", int, "epochs of linear warm-up before the schedule"),
    "--seed": ("seed", int, "seed for initialisation, data order and augmentation"),
    "--device": ("device", str, "cpu or cuda"),
    "--image-size": ("image_size", int, "folder data: resize images to this size"),
    "--memory-format": ("memory_format", str, "channels_last (direct convolution kernels, about 2x faster on "
                                              "the CPU) or contiguous_format (NCHW, the im2col kernels; the "
                                              "default with --device cuda, whose kernels are NCHW)"),
}


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a model (default: ResNet-20 on the bundled digits, about a minute)",
        description="Train a residual network. With no arguments: ResNet-20 on scikit-learn's 8x8 digits for "
                    f"{DEFAULTS.epochs} epochs. Writes checkpoint.safetensors, model.safetensors, state.json, "
                    "metrics.csv, metrics.json and curves.png to --out. Ctrl-C (or SIGTERM) stops at the next "
                    "step boundary and saves a checkpoint that --resume continues bit for bit; a second Ctrl-C "
                    "stops at once. A NaN or infinite loss, weight or running statistic stops the run (exit 1) "
                    "and keeps the last good checkpoint. "
                    f"Optimiser: SGD with lr {DEFAULTS.lr}, momentum {DEFAULTS.momentum} (Nesterov), weight decay "
                    f"{DEFAULTS.weight_decay} on conv and fc weights only, a {DEFAULTS.schedule} learning-rate "
                    f"schedule. This differs "
                    "from optim.SGD's (and torch.optim.SGD's) defaults, which are no momentum, no Nesterov and no "
                    "weight decay, applied to every parameter.")
    for flag, (name, kind, text) in OPTIONS.items():
        parser.add_argument(flag, type=kind, default=None, help=f"{text} (default: {getattr(DEFAULTS, name)})")
    parser.add_argument("--out", type=user_path, help="run directory (default: runs/MODEL-DATA, numbered if it exists)")
    parser.add_argument("--resume", type=user_path, metavar="DIR", help="continue the run saved in DIR (--epochs may be raised)")
    parser.add_argument("--allow-data-change", action="store_true",
                        help="with --resume: continue even though the data set changed since the run started")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args):
    """``minires train``; under ``mpiexec -n N`` every rank runs it: rank 0 alone prints and writes, and a
    run that fails ends every rank with one message (see _end_together)."""
    world = distributed.world()
    if world.size == 1:
        return _train(args)
    args.quiet = args.quiet or world.rank != 0
    silent, message = open(os.devnull, "w"), None
    try:
        with contextlib.redirect_stdout(sys.stdout if world.rank == 0 else silent), \
                contextlib.redirect_stderr(sys.stderr if world.rank == 0 else silent):
            code = _train(args, world)
    except MiniresError as exc:  # a user's fault: every rank usually meets it, rank 0 reports it
        code, message = USAGE, f"minires train: {describe(exc)}"
    except BaseException:
        sys.stderr.write(f"[rank {world.rank}] {traceback.format_exc()}")
        code = 1
    if code:
        _end_together(world, code, message)
    return code


# How long a failed rank waits for the others at the end. Ranks that share a verdict arrive within
# milliseconds of each other; only a rank that failed alone waits this long before it aborts the job.
ARRIVAL_SECONDS = 10.0


def _end_together(world, code, message):
    """End a failed run on every rank. When every rank arrives here (a verdict they share: a diverged step,
    a stop request, the same user fault), rank 0 has printed the one message and every rank returns
    ``code`` and exits normally, so the launcher forwards all the output. Otherwise some rank is still
    waiting in a collective: this rank prints its own message (rank 0 may be the one waiting) and aborts
    the job. MPI_Abort ends the processes while the launcher may still hold their unforwarded output: aborting
    after a shared verdict was seen to lose rank 0's message (issue 26: about one run in three, elsewhere)."""
    if message and world.rank == 0:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()
    if world.all_arrive(ARRIVAL_SECONDS):
        return
    if message and world.rank != 0:
        sys.stderr.write(f"{message} (rank {world.rank})\n")
    world.abort(code)


def _train(args, world=None):
    given = {name: getattr(args, flag[2:].replace("-", "_")) for flag, (name, _, _) in OPTIONS.items()}
    given = {name: value for name, value in given.items() if value is not None}
    if given.get("device", "").startswith("cuda") and "memory_format" not in given:
        given["memory_format"] = "contiguous_format"  # the GPU kernels are NCHW (kernels/cuda/im2col.py)
    callbacks = None if args.quiet else ProgressBars()
    training = False
    try:
        if args.resume:
            trainer = _resume(args, given, callbacks)
        else:
            config = dataclasses.replace(DEFAULTS, **given)
            directory = args.out or _fresh_directory(config)
            if world is not None:  # every rank uses rank 0's choice of a fresh directory
                directory = world.comm.bcast(directory, root=0)
            if os.path.isfile(os.path.join(directory, CHECKPOINT)):
                return fail("train", f"{directory} already holds a training checkpoint; continue it with "
                                     f"--resume {directory}, or choose another --out")
            trainer = Trainer(config, directory, callbacks)
        print(f"training {trainer.config.model} ({sum(p.numel() for p in trainer.model.parameters()):,} parameters) "
              f"on {trainer.config.data}: {len(trainer.bundle.train)} training / {len(trainer.bundle.test)} test "
              f"images of shape {trainer.bundle.input_shape}, {trainer.config.epochs} epochs; run directory "
              f"{trainer.directory}")
        training = True  # from here a first Ctrl-C stops at a step boundary, a second one at once
        summary = trainer.fit()
    except TrainingDiverged as exc:
        return fail("train", exc, code=1)
    except TrainingInterrupted as exc:  # Ctrl-C or SIGTERM, acted on at the next step boundary and saved
        print(file=sys.stderr)
        return fail("train", exc, code=130)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training began: nothing more was saved
        print(file=sys.stderr)
        if not training:
            return fail("train", "stopped before the first step; nothing was saved, so there is nothing to "
                                 "resume: start the run again", code=130)
        return fail("train", "stopped at once; the last checkpoint written (if any) is kept", code=130)
    finally:
        if callbacks is not None:
            callbacks.close()
    print(f"done: {summary['epochs']} epochs, {summary['steps']} steps in {summary['seconds']:.1f} s; test accuracy "
          f"{100 * summary['test_accuracy']:.2f}% (best {100 * summary['best_accuracy']:.2f}% at epoch "
          f"{summary['best_epoch']}), test loss {summary['test_loss']:.4f}; checkpoint, metrics"
          f"{' and curves' if summary['curves'] else ''} in {summary['directory']}")
    return 0


def _resume(args, given, callbacks):
    trainer = Trainer.resume(args.resume, epochs=given.pop("epochs", None), callbacks=callbacks,
                             allow_data_change=args.allow_data_change)
    changed = {k: v for k, v in given.items() if getattr(trainer.config, k) != v}
    if changed:
        raise ArgumentError("a resumed run keeps its configuration; these differ from the checkpoint: " +
                            ", ".join(f"{k}={v!r} (checkpoint: {getattr(trainer.config, k)!r})"
                                      for k, v in changed.items()))
    if args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
        if os.path.isfile(os.path.join(args.out, CHECKPOINT)):
            other = read_run(args.out)[1]
            if other.get("run_id") is None or other.get("run_id") != trainer.state["run_id"]:
                raise ArgumentError(f"--out {args.out} holds another run ({other['config']['model']} on "
                                    f"{other['config']['data']}, epoch {other['epoch']}); choose an empty --out")
        trainer.directory = args.out
    if trainer.data_changes:
        print(f"WARNING: the data set changed since this run started ({'; '.join(trainer.data_changes)}); "
              f"continuing on the new data as --allow-data-change asks", file=sys.stderr)
    return trainer


def _fresh_directory(config):
    name = f"{config.model}-{config.data.split(':')[0]}"
    directory, number = os.path.join("runs", name), 1
    while os.path.exists(directory):
        number += 1
        directory = os.path.join("runs", f"{name}-{number}")
    return directory
