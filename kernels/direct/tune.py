"""The autotuner: which register block a layer runs with, timed on the layer itself and remembered per CPU.

On a layer's first call, fast.py asks ``Tuner.choose`` for a block among blocks.candidates(...). The answer
comes, first match wins, from
  1. this process's memory of the layer;
  2. the tuning file of this CPU (beside the compiled kernels): an entry is used only if its file is intact,
     names this machine (isa.machine_key: CPU model, LLVM target, ISA profile) and this generator, and the
     block is one of today's candidates — anything else is ignored, never trusted;
  3. the default (candidates[0]) when tuning is off (MINIRES_TUNE=0) or the layer is too quick to be worth it
     (one call under ``worth_seconds``: the quick start's 8x8 digit layers take about 1 ms, and tuning them
     would only lengthen its first run);
  4. timing: every candidate runs the layer on a scratch output, once to compile (or load it from the
     disk cache) and then ``repeats`` times; the fastest wins and is written to the file.
``minires tune`` (``forcing()``) times every layer it meets, whatever its size and whatever the file says.
A layer is (kind, the shapes of its arrays, its scalar arguments, numba's thread count).
"""
import contextlib
import hashlib
import json
import logging
import os
import threading
import time

import numba
import numpy as np

log = logging.getLogger("minires.tune")

FORMAT = 1


def tuning_enabled():
    return os.environ.get("MINIRES_TUNE", "1") != "0"


def layer_key(kind, args):
    """A string naming the layer: the kind, each array's shape, each scalar, the thread count."""
    parts = [kind] + ["x".join(map(str, a.shape)) if isinstance(a, np.ndarray) else str(a) for a in args]
    return " ".join(parts + [f"t{numba.get_num_threads()}"])


def seconds_of(run, repeats):
    """The fastest of ``repeats`` timed calls of run()."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


class Tuner:
    def __init__(self, directory, machine, generator, worth_seconds=0.003, repeats=3):
        self.path = directory / f"tuning-{hashlib.sha1(machine.encode()).hexdigest()[:12]}.json"
        self.machine, self.generator = machine, generator
        self.worth_seconds, self.repeats = worth_seconds, repeats
        self.chosen = {}   # layer key -> block, this process
        self.timings = {}  # layer key -> {block: seconds}, what this process measured
        self.forced = False
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def forcing(self):
        """Time every layer met inside, however quick, and whatever the file says (``minires tune``)."""
        self.forced, self.chosen = True, {}
        try:
            yield self
        finally:
            self.forced = False

    def stored(self):
        """{layer key: [kind, size, vectors]} from this CPU's tuning file; {} for a missing, damaged or foreign one."""
        try:
            content = json.loads(self.path.read_text())
            if (not isinstance(content, dict) or content.get("format") != FORMAT
                    or content.get("machine") != self.machine or content.get("generator") != self.generator
                    or not isinstance(content.get("choices"), dict)):
                log.info("ignoring %s: written for another machine or generator", self.path)
                return {}
            return content["choices"]
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.info("ignoring the damaged tuning file %s: %s", self.path, exc)
            return {}

    def _remember(self, key, block):
        choices = self.stored()
        choices[key] = list(block)
        content = {"format": FORMAT, "machine": self.machine, "generator": self.generator, "choices": choices}
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            temporary.write_text(json.dumps(content, indent=0, sort_keys=True))
            os.replace(temporary, self.path)  # other processes read the whole file or the old one
        except OSError as exc:  # a read-only cache costs the tuning next time, never the run
            log.info("could not write %s: %s", self.path, exc)

    def choose(self, kind, args, candidates, run):
        """The block to run this layer with; ``run(block, args)`` runs the kernel (args[2] is its output, which
        tuning replaces by a zeroed scratch array)."""
        key = layer_key(kind, args)
        with self._lock:
            if key in self.chosen:
                return self.chosen[key]
            entry = None if self.forced else self.stored().get(key)
            block = next((b for b in candidates if entry is not None and list(b) == entry), None)
            if block is None:
                block = self._measure(key, args, candidates, run)
            self.chosen[key] = block
            return block

    def _measure(self, key, args, candidates, run):
        if len(candidates) == 1 or not (tuning_enabled() or self.forced):
            return candidates[0]

        def timed(block):
            scratch = list(args)

            def once():
                scratch[2] = np.zeros_like(args[2])
                run(block, scratch)
            once()  # compiles, or loads the kernel from the disk cache
            return seconds_of(once, self.repeats)

        seconds = {candidates[0]: timed(candidates[0])}
        if seconds[candidates[0]] < self.worth_seconds and not self.forced:
            return candidates[0]
        for block in candidates[1:]:
            seconds[block] = timed(block)
        self.timings[key] = seconds
        best = min(seconds, key=seconds.get)
        self._remember(key, best)
        return best
