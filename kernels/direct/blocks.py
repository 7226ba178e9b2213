"""Register blocks: which (size, vectors) a generated kernel may use on a machine, and which one it uses
before (or without) tuning.

A kernel of fast.py keeps ``size x vectors`` accumulators in vector registers (size = output pixels, or input
channels for dW, or output channels for weight_grad_cl; vectors = vectors of LANES channels), loads
``vectors`` (three times as many for the row-of-taps kinds) and broadcasts one scalar. All of them must fit
the profile's registers (isa.py), or LLVM spills the block to memory and the kernel runs at a third of its
speed: measured on a 2-core AVX2 Zen 3 with 16-lane vectors (two ymm each), 4 or 6 independent chains of
multiply-adds reached 201 GF/s, 8, 12 and 16 chains 98, 108 and 86 GF/s (issue 28).

The default is the largest block that fits half the registers (at most 8 along ``size``): on AVX-512 that
is what was measured best before the tuner existed (8 pixels with 1-2 vectors, 4 with 4). tune.py times the
candidates on the layer itself and may choose another.
"""
import functools
from typing import NamedTuple

ROW3 = ("forward_row3", "weight_grad_row3")  # kinds that hold three taps' vectors at once
MAX_SIZE = 12  # the longest block generated along size (accumulators beyond it never paid on any machine)


class Block(NamedTuple):
    kind: str      # which generated kernel (fast.py's _SOURCES)
    size: int
    vectors: int


def registers_needed(kind, size, vectors):
    """Vector registers a block of ``kind`` holds: accumulators, the loaded vectors, one broadcast scalar."""
    if kind == "weight_grad_row3":
        return 3 * size * vectors + 3 * vectors + 1
    if kind == "forward_row3":
        return size * vectors + 3 * vectors + 1
    return size * vectors + vectors + 1


def fits(block, profile):
    return registers_needed(*block) <= profile.registers


def _divisors(count, largest):
    return [v for v in range(min(count, largest), 0, -1) if count % v == 0]


def max_vectors(profile):
    """Vectors per block at most: a quarter of the registers (AVX-512 and NEON 8, AVX2 4), so at least two
    accumulator rows and the loaded vectors fit."""
    return profile.registers // 4


def default_vectors(kind, profile, vector_count):
    """Vectors of the block: the most that divide the layer's ``vector_count`` up to 4 (AVX-512's measured
    best) or an eighth of the registers, whichever is smaller; one for the row-of-taps dW (its 3 x size
    accumulators fill the registers already)."""
    if kind == "weight_grad_row3":
        return 1
    if kind == "weight_grad_cl":  # output channels as scalars, so two vectors of input channels suffice
        return _divisors(vector_count, 2)[0]
    return _divisors(vector_count, min(4, profile.registers // 8))[0]


def default_size(kind, profile, vectors, limit=None, divides=None):
    """The block's size: the largest (at most 8, at most ``limit``, dividing ``divides``) whose accumulators
    fit half the registers, or for the row-of-taps kinds all the registers they leave (their loads are part of
    the block)."""
    if kind in ROW3:
        spare = profile.registers - (registers_needed(kind, 0, vectors))
        size = spare // (3 * vectors if kind == "weight_grad_row3" else vectors)
    else:
        size = profile.registers // 2 // vectors
    size = max(1, min(8, size, limit or 8))
    while divides is not None and divides % size:
        size -= 1
    return size


def default(kind, profile, vector_count, limit=None, divides=None):
    vectors = default_vectors(kind, profile, vector_count)
    return Block(kind, default_size(kind, profile, vectors, limit, divides), vectors)


def candidates(kind, profile, vector_count, limit=None, divides=None):
    """The blocks the tuner times for a layer, the default first: for each vector count that divides the
    layer's (the largest three), the largest size that fits the registers and that size's half (not below 2: a
    one-row block uses each loaded vector once, so loads bound it); ``limit`` caps the size (a layer's input
    channels for dW), ``divides`` must be divisible by it (weight_grad_cl's output channels)."""
    first = default(kind, profile, vector_count, limit, divides)
    found = [first]
    for vectors in _divisors(vector_count, max_vectors(profile))[:3]:
        largest = max((s for s in range(1, MAX_SIZE + 1)
                       if fits(Block(kind, s, vectors), profile) and (limit is None or s <= limit)
                       and (divides is None or divides % s == 0)), default=None)
        if largest is None:
            continue
        for size in (largest, largest // 2):
            if size >= 2 and (divides is None or divides % size == 0) and Block(kind, size, vectors) not in found:
                found.append(Block(kind, size, vectors))
    return found[:4]


def choices(kinds, profile, vector_count, limit=None, divides=None):
    """The blocks the tuner times for a layer that ``kinds`` can compute (the preferred kind first): the first
    three candidates of each. On AVX2 the per-tap forward beat the row-of-taps one that AVX-512 prefers
    (16->16 at 32x32: 4.4 ms against 5.5 ms), so where both apply both are timed."""
    return _choices(tuple(kinds), profile, vector_count, limit, divides)


@functools.lru_cache(maxsize=4096)  # asked on every call of a layer: one answer per layer shape
def _choices(kinds, profile, vector_count, limit, divides):
    return [block for kind in kinds for block in candidates(kind, profile, vector_count, limit, divides)[:3]]
