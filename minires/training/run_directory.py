"""A run directory belongs to one run at a time, and is checked before any work starts.

``RunDirectory(path, needed_bytes)`` as a context manager, for the length of ``Trainer.fit``:
- creates the directory and proves it writable (a read-only or impossible ``--out`` fails now, not after
  an epoch of training);
- estimates the room the checkpoints need against the free disk space;
- removes ``.tmp-*`` files that a killed atomic write left behind;
- holds an exclusive lock (``fcntl.flock`` on ``.lock``): a second ``minires train`` on the same directory is
  refused instead of overwriting the first one's files. The operating system releases the lock when the
  process dies, so a crash never leaves a stale lock. (No lock where fcntl is missing, e.g. Windows.)
"""
import glob
import os
import shutil
import tempfile

from ..errors import ArgumentError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK = ".lock"


class RunDirectory:
    def __init__(self, path, needed_bytes=0):
        self.path, self.needed_bytes = path, needed_bytes
        self._lock = None

    def __enter__(self):
        try:
            os.makedirs(self.path, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):
                pass
        except OSError as exc:
            raise ArgumentError(f"the run directory {self.path!r} cannot be written: {exc.strerror}") from None
        free = shutil.disk_usage(self.path).free
        if free < self.needed_bytes:
            raise ArgumentError(f"the run directory {self.path!r} has {free / 2**20:.0f} MiB free; its checkpoints "
                                f"need about {self.needed_bytes / 2**20:.0f} MiB")
        self._lock = _acquire(os.path.join(self.path, LOCK), self.path)
        for stale in glob.glob(os.path.join(glob.escape(self.path), ".tmp-*")):  # left by a killed write
            os.unlink(stale)
        return self

    def __exit__(self, *exc_info):
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None
        return False


def _acquire(lock_path, directory):
    handle = open(lock_path, "a+")
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ArgumentError(f"the run directory {directory!r} is in use by another minires train ({holder}); "
                            f"wait for it, or choose another --out") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle
