"""Whether operations record a graph for backward (``mr.no_grad()`` switches it off)."""
import contextlib
import threading

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


def set_grad_enabled(enabled):
    _state.enabled = bool(enabled)


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


def enable_grad():
    """Context manager: record graphs again inside a ``no_grad`` block."""
    return _grad_mode(True)
