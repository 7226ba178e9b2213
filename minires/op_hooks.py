"""Op hooks: the supported way for tools (the profiler, parity's ReLU recorder) to watch every op's forward
and backward without patching the engine.

A hook is a callable ``hook(node, phase, inputs, run)``:
    node    the Function doing the work (``node.op_name()`` names the op);
    phase   "forward" or "backward";
    inputs  the arrays the call receives: the op's input arrays, or ``(grad_output,)`` for backward;
    run     a function of no arguments that does the work and returns its result.
The hook must call ``run()`` once and return what it returned. Hooks nest: the first registered is the
outermost. With no hook registered the engine calls forward and backward directly.

    with op_hooks.registered(hook):      # or handle = register(hook) ... handle.remove()
        model(x).sum().backward()

A hook registered with ``every_op=True`` (parity's ReLU recorder) must see each op of the textbook form:
while one is registered, fused blocks run unfused (nn.BasicBlock). The profiler's hooks see what runs.
"""
import contextlib

_hooks = []
_every_op = []  # the hooks that asked to see every unfused op


class HookHandle:
    def __init__(self, hook):
        self.hook = hook

    def remove(self):
        if self.hook in _hooks:
            _hooks.remove(self.hook)
        if self.hook in _every_op:
            _every_op.remove(self.hook)


def register(hook, every_op=False):
    """Call ``hook`` around every op's forward and backward until the returned handle's ``remove()``."""
    _hooks.append(hook)
    if every_op:
        _every_op.append(hook)
    return HookHandle(hook)


def every_op_watched():
    """Whether a registered hook asked to see every op unfused."""
    return bool(_every_op)


@contextlib.contextmanager
def registered(hook, every_op=False):
    handle = register(hook, every_op)
    try:
        yield hook
    finally:
        handle.remove()


def run(node, phase, inputs, work):
    """``work()`` (the node's forward or backward), wrapped by every registered hook."""
    if not _hooks:
        return work()
    for hook in reversed(_hooks):
        work = _wrapped(hook, node, phase, inputs, work)
    return work()


def _wrapped(hook, node, phase, inputs, work):
    return lambda: hook(node, phase, inputs, work)
