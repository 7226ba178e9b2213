"""How every command reports a failure: one line on stderr, named after the command, and an exit code.

``cli.main`` catches the user's faults once (``USER_FAULTS``: every MiniresError, and at the I/O boundary the
operating system's, memory's and the decoders' errors) and reports them with ``fail``; anything else is a
bug in minires and keeps its traceback.
"""
import sys
import zlib

from ..errors import MiniresError

USAGE = 2  # a user's bad input: a flag, a file, a missing dependency


def _decoder_errors():
    try:
        from PIL import Image
    except ImportError:
        return ()
    return (Image.DecompressionBombError,)  # (PIL's UnidentifiedImageError is an OSError)


USER_FAULTS = (MiniresError, OSError, MemoryError, EOFError, zlib.error) + _decoder_errors()


def describe(exc):
    """One line for a user's fault: the message of a MiniresError, a sentence for the others."""
    if isinstance(exc, MiniresError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename!r}" if exc.filename else ""
        return f"{exc.strerror}{': ' + where if where else ''}"
    if isinstance(exc, MemoryError):
        return f"out of memory{': ' + str(exc) if str(exc) else ''} (try smaller sizes)"
    if isinstance(exc, (EOFError, zlib.error)):
        return f"a compressed file is damaged or cut short ({exc})"
    return str(exc) or type(exc).__name__


def fail(command, message, code=USAGE):
    """Print ``minires COMMAND: message`` to stderr and return ``code`` for the command to exit with (a message
    that already starts with the command's name, as the library's own do, keeps one copy of it)."""
    message = str(message)
    if message.startswith(f"{command}: "):
        message = message[len(command) + 2:]
    print(f"minires {command}: {message}", file=sys.stderr)
    return code
