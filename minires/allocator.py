"""Freed memory stays with the process while training runs.

A training step allocates the same large arrays every time: each layer's output, kept for backward, is
freed when backward is done and asked for again by the next step's forward. glibc's malloc hands such memory
back to the kernel as soon as a few MiB are free at the top of its heap (its trim threshold) and serves
arrays above its mmap threshold by fresh ``mmap`` calls, so every step page-faults and zero-fills all of its
activations again: measured on a ResNet-56 step at batch 128, the forward convolutions took 162 ms instead of
96 and the forward batch-norms 45 instead of 25 (benchmarks/RESULTS.md). GPU engines avoid the same cost
with a caching allocator; for NumPy arrays, glibc's own knobs do it:

- the mmap threshold is set to its largest value (32 MiB on 64-bit Linux), so activations come from the
  heap. It stays there afterwards: glibc's own dynamic threshold climbs towards it once large arrays are freed;
- the trim threshold is raised to 2 GiB while ``keep_freed_memory()`` is open, so freed activations stay
  mapped for the next step. On exit it goes to 64 MiB (twice the mmap threshold, as glibc's dynamic rule
  would set it) and ``malloc_trim`` gives the memory back.

Peak memory is unchanged (a step needs its activations either way); between steps the process keeps its
peak. Elsewhere than glibc (macOS, musl) this does nothing.
"""
import contextlib
import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
LARGEST_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc refuses more on 64-bit (HEAP_MAX_SIZE / 2)
KEEP_UP_TO = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB free at the top of the heap
AFTERWARDS_TRIM_THRESHOLD = 2 * LARGEST_MMAP_THRESHOLD  # where glibc's dynamic trim threshold would be


def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_libc = _glibc()
_depth = 0  # nesting of keep_freed_memory() blocks
_keeping = False  # whether glibc accepted the settings of the open block


@contextlib.contextmanager
def keep_freed_memory():
    """Inside the block, freed arrays stay mapped for reuse instead of going back to the kernel."""
    global _depth, _keeping
    if _libc is None:
        yield
        return
    if _depth == 0:  # mallopt returns 1 when glibc took the value
        _keeping = _libc.mallopt(M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD) == 1 and \
            _libc.mallopt(M_TRIM_THRESHOLD, KEEP_UP_TO) == 1
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _libc.mallopt(M_TRIM_THRESHOLD, AFTERWARDS_TRIM_THRESHOLD)
            _libc.malloc_trim(0)
            _keeping = False


def active():
    """Whether freed memory is being kept: inside ``keep_freed_memory()``, and glibc took the settings."""
    return _keeping
