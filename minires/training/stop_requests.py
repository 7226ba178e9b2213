"""Ctrl-C and SIGTERM during training: acted on at safe points only.

While a ``StopRequests`` block is active (in the main thread), SIGINT and SIGTERM only record that a stop was
asked for; the training loop looks at ``requested`` between two steps, where its state is one that an
uninterrupted run also passes through, saves that state and stops. So a checkpoint written on a signal always
resumes to the same weights, bit for bit. A second signal while the first is pending stops at once, with a
KeyboardInterrupt (the last checkpoint on disk is then the last one written, whole: writes are atomic).
"""
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    def __init__(self):
        self.requested = None  # the name of the first signal received, e.g. "SIGINT"
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self._previous = {number: signal.signal(number, self._receive) for number in SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
        return False

    def _receive(self, number, frame):
        if self.requested is not None:  # asked twice: the user wants out now
            raise KeyboardInterrupt
        self.requested = signal.Signals(number).name
