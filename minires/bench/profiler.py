"""Where does a training step's time go? ``profile_ops()`` times every op's forward and backward, per op
name, through an op hook (minires.op_hooks); ``profile.timed(name, phase)`` times anything else the caller
wraps, such as the optimiser step. The rest of the wall time is Python overhead (graph bookkeeping, module
calls, array allocation outside the ops).

    with profile_ops() as profile:
        loss = step_forward_and_backward()
        with profile.timed("SGD.step", "update"):
            optimizer.step()
    profile.table()  -> rows of (op, phase, calls, seconds)
"""
import collections
import contextlib
import time

from .. import op_hooks
from ..memory_format import conversions


class OpProfile:
    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.calls = collections.defaultdict(int)
        self.wall = 0.0
        self.conversions, self.conversion_bytes = 0, 0  # memory-format copies (minires.memory_format)

    def add(self, key, seconds):
        self.seconds[key] += seconds
        self.calls[key] += 1

    @contextlib.contextmanager
    def timed(self, name, phase):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add((name, phase), time.perf_counter() - start)

    def op_hook(self, node, phase, inputs, run):
        with self.timed(node.op_name(), phase):
            return run()

    def table(self):
        """[(op, phase, calls, seconds)] sorted by time, with a final row for everything outside the ops."""
        rows = sorted(((op, phase, self.calls[(op, phase)], s) for (op, phase), s in self.seconds.items()),
                      key=lambda row: -row[3])
        rows.append(("(python overhead)", "-", 0, max(self.wall - sum(self.seconds.values()), 0.0)))
        return rows


@contextlib.contextmanager
def profile_ops():
    profile = OpProfile()
    start = time.perf_counter()
    count, nbytes = conversions.count, conversions.bytes
    try:
        with op_hooks.registered(profile.op_hook):
            yield profile
    finally:
        profile.wall = time.perf_counter() - start
        profile.conversions, profile.conversion_bytes = conversions.count - count, conversions.bytes - nbytes
