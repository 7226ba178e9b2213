"""How every command reports a failure: one line on stderr, named after the command, and an exit code."""
import sys

USAGE = 2  # a user's bad input: a flag, a file, a missing dependency


def fail(command, message, code=USAGE):
    """Print ``minires COMMAND: message`` to stderr and return ``code`` for the command to exit with."""
    print(f"minires {command}: {message}", file=sys.stderr)
    return code
