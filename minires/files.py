"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never a partial one.

The data goes to a temporary file beside the target, is fsynced, and renamed over the target; the rename
is made durable by fsyncing the directory. Checkpoints, metrics and the lab's tables are all written this way.
"""
import os
import tempfile

from .errors import ArgumentError


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ArgumentError(f"{path!r} is a directory; give the name of the file to write")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)  # make the rename itself durable
    finally:
        os.close(directory_fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
