"""Where does a training step's time go? ``profile_ops()`` times every Function's forward and backward and
every optimiser step, per op name, while it is active; the rest of the wall time is Python overhead
(graph bookkeeping, module calls, array allocation outside the ops).

    with profile_ops() as profile:
        train_step()
    profile.table()  -> rows of (op, phase, calls, seconds)
"""
import collections
import contextlib
import time

from .function import Function
from .optim import Optimizer


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


class OpProfile:
    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.calls = collections.defaultdict(int)
        self.wall = 0.0

    def add(self, key, seconds):
        self.seconds[key] += seconds
        self.calls[key] += 1

    def table(self):
        """[(op, phase, calls, seconds)] sorted by time, with a final row for everything outside the ops."""
        rows = sorted(((op, phase, self.calls[(op, phase)], s) for (op, phase), s in self.seconds.items()),
                      key=lambda row: -row[3])
        rows.append(("(python overhead)", "-", 0, max(self.wall - sum(self.seconds.values()), 0.0)))
        return rows


def _timed(function, profile, phase):
    """Wrap a method; the key is (the calling instance's op name, phase), so inherited methods count right."""
    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return function(self, *args, **kwargs)
        finally:
            name = self.op_name() if isinstance(self, Function) else f"{type(self).__name__}.step"
            profile.add((name, phase), time.perf_counter() - start)
    return wrapper


@contextlib.contextmanager
def profile_ops():
    profile = OpProfile()
    patched = []
    for cls in list(_subclasses(Function)):
        for phase in ("forward", "backward"):
            if phase in cls.__dict__:
                patched.append((cls, phase, cls.__dict__[phase]))
                setattr(cls, phase, _timed(cls.__dict__[phase], profile, phase))
    for cls in list(_subclasses(Optimizer)):
        if "step" in cls.__dict__:
            patched.append((cls, "step", cls.__dict__["step"]))
            setattr(cls, "step", _timed(cls.__dict__["step"], profile, "update"))
    start = time.perf_counter()
    try:
        yield profile
    finally:
        profile.wall = time.perf_counter() - start
        for cls, name, original in patched:
            setattr(cls, name, original)
