"""Whether operations record a graph for backward (``mr.no_grad()`` switches it off)."""
import contextlib
import threading

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


class set_grad_enabled:
    """Switch graph recording on or off: at once as a call (``set_grad_enabled(False)``), or for a block as
    a context manager (``with set_grad_enabled(phase == "train"):``), as in torch."""

    def __init__(self, enabled):
        self.previous = is_grad_enabled()
        _state.enabled = bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        _state.enabled = self.previous


@contextlib.contextmanager
def _grad_mode(enabled):
    previous = is_grad_enabled()
    set_grad_enabled(enabled)
    try:
        yield
    finally:
        set_grad_enabled(previous)


def no_grad():
    """Context manager: inside it, results never require grad and no graph is built (evaluation, updates)."""
    return _grad_mode(False)


inference_mode = no_grad  # torch's faster no_grad; here the same thing


def enable_grad():
    """Context manager: record graphs again inside a ``no_grad`` block."""
    return _grad_mode(True)
