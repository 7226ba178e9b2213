"""Direct convolution in channels-last (NHWC) memory with explicit vector register blocks: the fast CPU path
for float32 convolutions (im2col.py stays the readable reference, the general fallback and the GPU path).

Notation: xpad (N, HP, WP, C) is the input with its zero padding (each kernel pads one image at a time
into a per-thread buffer, in cache), the weight is stored as w (KH, KW, C, OC), stride (SH, SW), output
y (N, OH, OW, OC). Every sum runs over the taps (i, j) and the channel named on the right:
    forward   y[n, oy, ox, o]        = sum_{i,j,c} xpad[n, oy SH + i, ox SW + j, c] w[i, j, c, o]
    dW        dw[i, j, c, o]         = sum_{n,oy,ox} xpad[n, oy SH + i, ox SW + j, c] gy[n, oy, ox, o]
    dx        dxpad[n, oy SH + i, ox SW + j, c] += sum_o gy[n, oy, ox, o] w[i, j, c, o]
With stride 1, dx is itself a forward convolution: of gy padded by K - 1 - P with the kernel flipped and its
channel axes swapped (a gather, no read-modify-write); other strides scatter, one image per thread.

How it is fast: the innermost loop keeps a register block of accumulators — PB output pixels x OV vectors of
L output channels — in vector registers (simd.py) for the whole reduction over taps and channels, and each
loaded weight vector is used PB times. L, the float32 lanes of one register, and the register budget come from
the instruction set the code is generated for (isa.py: 16 on AVX-512, 8 on AVX2, 4 on NEON; the generated
source names it ``L``); blocks.py lists the blocks that fit the registers, tune.py picks one per layer. The
register block's shape is fixed when a kernel is compiled, so each (kind, PB, OV, L) is generated as Python
source (the unrolled block is the only generated part; the loops around it are ordinary numba), written to
the cache directory and compiled by numba with ``cache=True``: the first run on a machine compiles (seconds,
reported by ``compile_report()``), later runs load the machine code from disk. Pixel rows whose width is
not a multiple of PB finish with a one-pixel block; channel counts that are not a multiple of L are
zero-padded (a copy; no zoo network needs one). With few vectors the per-tap block is bound by loads (one
input value per multiply-add), so 3-wide kernels at stride 1 use blocks that serve a row's three taps from each load (``forward_row3``,
``weight_grad_row3``).
"""
import hashlib
import importlib.util
import os
import pathlib
import sys
import tempfile
import threading
import time

import numba
import numpy as np

from minires.errors import DeviceError, StorageError

from ..jit import BOUNDS_CHECKED, CACHE_ON_DISK, parallel_jit, prange
from . import blocks, isa, tune


def _indent(lines, depth):
    return [" " * (4 * depth) + line for line in lines]


# --- the generated part: one unrolled register block per kernel -------------------------------------------

def _blocks_then_rest(whole, rest, block, size, vectors, depth):
    """The loop ``whole`` over full blocks of ``size`` rows, then the loop ``rest`` over what is left, one
    row at a time; ``block(rows, vectors)`` gives each loop's body, indented ``depth`` levels."""
    return [whole] + _indent(block(size, vectors), depth) + [rest] + _indent(block(1, vectors), depth)


def _accumulators(rows, vectors):
    """The register block's names, a{row}_{v}, and the lines that zero them."""
    acc = [[f"a{r}_{v}" for v in range(vectors)] for r in range(rows)]
    return acc, [f"{name} = vzero()" for row in acc for name in row]


def _rank_one_update(acc, array, offset, scalar):
    """One step of the reduction: load the vectors array[offset + L v], then for each row r of the block
    acc[r][v] += scalar(r) * vector v (each loaded vector used by every row)."""
    lines = [f"u{v} = vload({array}, {offset} + {v} * L)" for v in range(len(acc[0]))]
    for r, row in enumerate(acc):
        lines.append(f"s = {scalar(r)}")
        lines += [f"{name} = vsfma(s, u{v}, {name})" for v, name in enumerate(row)]
    return lines

def _tap_reduction(acc, first, end):
    """The forward's reduction for the pixels whose input offsets are x0, x1, ...: over taps (i, j) and the
    input channels first..end, acc[p][v] += xpad[pixel p + tap, ch] w[i, j, ch, ob + L v]."""
    lines = ["for i in range(kh):",
             "    for j in range(kw):",
             f"        xo = (i * wp + j) * c + {first}",
             f"        wo = ((i * kw + j) * c + {first}) * oc + ob",
             f"        for ch in range({first}, {end}):"]
    body = _rank_one_update(acc, "w", "wo", lambda p: f"sload(xflat, x{p} + xo)") + ["xo += 1", "wo += oc"]
    return lines + _indent(body, 3)


def _forward_block(pixels, vectors):
    """y at the output pixels q + p (counted along the image's rows, so a block may wrap onto the next row:
    small images still fill it), p < pixels, channels ob + L v, v < vectors: the sum over taps (i, j) and
    input channels."""
    acc, lines = _accumulators(pixels, vectors)
    for p in range(pixels):
        lines += [f"oy, ox = divmod(q + {p}, ow)", f"x{p} = xb + (oy * sh * wp + ox * sw) * c"]
    lines += _tap_reduction(acc, "0", "c")
    lines.append("yo = (b * oh * ow + q) * oc + ob")
    lines += [f"vstore(out, yo + {p} * oc + {v} * L, {acc[p][v]})" for p in range(pixels) for v in range(vectors)]
    return lines


def _copy_into_halo(image, slot):
    """Lines that copy image ``image`` of x into slot ``slot`` of this thread's halo buffer (flat: xflat),
    inside its zero border, L floats at a time."""
    return ["row = wd * c",
            "for y in range(h):",
            f"    src = (({image}) * h + y) * row",
            f"    dst = (({slot} * hp + ph + y) * wp + pw) * c",
            "    for e in range(0, row - row % L, L):",
            "        vstore(xflat, dst + e, vload(xall, src + e))",
            "    for e in range(row - row % L, row):",
            "        xflat[dst + e] = xall[src + e]"]


def _padded_image(depth):
    """Lines that make image b's input readable with its zero padding: copied into this thread's halo buffer
    (zero borders, written once per call), where the block reads it at offset xb = 0, or read in place
    (xb = b's offset) when there is no padding. The copy is one image, in cache; padding the whole batch
    beforehand cost a pass over memory each way (9 ms of a 120 ms ResNet-20 step)."""
    return _indent(["if padding:"] + _indent(_copy_into_halo("b", "0"), 1) +
                   ["    xb = 0",
                    "else:",
                    "    xb = b * hp * wp * c"], depth)


_INPUT = ["    n, h, wd, c = x.shape",
          "    xall = x.reshape(-1)",
          "    hp, wp = h + 2 * ph, wd + 2 * pw",
          "    padding = ph > 0 or pw > 0",
          "    threads = halo.shape[0]"]


def _forward_header(pixels, vectors, name):
    """x (N, H, W, C) unpadded; halo (T, H + 2 PH, W + 2 PW, C) zeroed. Thread t takes an equal share of the
    tasks, one image for one chunk of output channels each, chunk first, so the images a thread takes in
    turn share one chunk's weights in cache (with 256 channels all the weights are 2.4 MB; a chunk of 64 is
    590 KB)."""
    lines = [f"def {name}(x, w, out, kh, kw, sh, sw, ph, pw, halo):"] + _INPUT + [
             "    oh, ow, oc = out.shape[1], out.shape[2], out.shape[3]",
             "    step, tap = sw * c, c * oc",
             f"    tasks = oc // (L * {vectors}) * n",
             "    per = (tasks + threads - 1) // threads",
             "    for t in prange(threads):",
             "        xflat = halo[t].reshape(-1) if padding else xall",
             "        for task in range(t * per, min(tasks, (t + 1) * per)):",
             "            chunk = task // n",
             "            b = task - chunk * n",
             f"            ob = chunk * L * {vectors}"]
    return lines + _padded_image(3)


def _forward_source(pixels, vectors):
    """The image's output pixels in blocks along its rows (see _forward_header)."""
    lines = _forward_header(pixels, vectors, "forward") + [f"            full = oh * ow - oh * ow % {pixels}"]
    return lines + _blocks_then_rest(f"            for q in range(0, full, {pixels}):",
                                     "            for q in range(full, oh * ow):", _forward_block, pixels, vectors, 4)


def _forward_tiled_block(pixels, vectors):
    """The forward block over the output pixels q + p of a group of images (counted image after image) and
    the input channels cs..ce only: the first channel tile stores, the later ones add."""
    acc, lines = _accumulators(pixels, vectors)
    for p in range(pixels):
        lines += [f"k, r = divmod(q + {p}, img)", "oy, ox = divmod(r, ow)",
                  f"x{p} = ((k * hp + oy * sh) * wp + ox * sw) * c", f"y{p} = ((first + k) * img + r) * oc + ob"]
    lines += _tap_reduction(acc, "cs", "ce")
    lines.append("if cs == 0:")
    lines += [f"    vstore(out, y{p} + {v} * L, {acc[p][v]})" for p in range(pixels) for v in range(vectors)]
    lines.append("else:")
    lines += [f"    vaddstore(out, y{p} + {v} * L, {acc[p][v]})" for p in range(pixels) for v in range(vectors)]
    return lines


def _forward_tiled_source(pixels, vectors):
    """The forward for small images with many channels: a task is a group of images (halo (T, G, HP, WP, C))
    for one chunk of output channels, its reduction split into tiles of ``tile`` input channels, so that a
    tile's weights (taps x tile x chunk) stay in cache while every pixel block of the group uses them.
    Per image, a 2x2 image fills one block and streamed the chunk's weights from memory for it."""
    lines = ["def forward_tiled(x, w, out, kh, kw, sh, sw, ph, pw, halo, tile):"] + _INPUT + [
             "    oh, ow, oc = out.shape[1], out.shape[2], out.shape[3]",
             "    img, group = oh * ow, halo.shape[1]",
             "    groups = (n + group - 1) // group",
             f"    tasks = oc // (L * {vectors}) * groups",
             "    per = (tasks + threads - 1) // threads",
             "    for t in prange(threads):",
             "        xflat = halo[t].reshape(-1)",
             "        for task in range(t * per, min(tasks, (t + 1) * per)):",
             "            chunk = task // groups",
             "            first = (task - chunk * groups) * group",
             "            count = min(group, n - first)",
             f"            ob = chunk * L * {vectors}",
             "            for k in range(count):"]
    lines += _indent(_copy_into_halo("first + k", "k"), 4)
    lines += ["            full = count * img - count * img % " + str(pixels),
              "            for cs in range(0, c, tile):",
              "                ce = min(c, cs + tile)"]
    return lines + _blocks_then_rest(f"                for q in range(0, full, {pixels}):",
                                     "                for q in range(full, count * img):", _forward_tiled_block,
                                     pixels, vectors, 5)


def _forward_row3_block(pixels, vectors):
    """The forward block for 3-wide kernels at horizontal stride 1, each input row read once for the three
    taps of that row: pixels + 2 loaded values serve 3 x pixels multiply-adds per weight vector (the per-tap
    block loads one value per multiply-add, so with one or two vectors it is bound by loads, not FMAs)."""
    acc, lines = _accumulators(pixels, vectors)
    lines += ["for i in range(kh):",
              "    xo = xb + ((oy * sh + i) * wp + ox) * c",
              "    wo = i * 3 * tap + ob",
              "    for ch in range(c):"]
    body = [f"u{j}_{v} = vload(w, wo + {j} * tap + {v} * L)" for j in range(3) for v in range(vectors)]
    body += [f"s{q} = sload(xflat, xo + {q} * c)" for q in range(pixels + 2)]
    body += [f"{acc[p][v]} = vsfma(s{p + j}, u{j}_{v}, {acc[p][v]})"
             for j in range(3) for p in range(pixels) for v in range(vectors)]
    body += ["xo += 1", "wo += oc"]
    lines += _indent(body, 2)
    lines.append("yo = ((b * oh + oy) * ow + ox) * oc + ob")
    lines += [f"vstore(out, yo + {p} * oc + {v} * L, {acc[p][v]})" for p in range(pixels) for v in range(vectors)]
    return lines


def _forward_row3_source(pixels, vectors):
    """forward() for kw == 3 and sw == 1 (the caller checks): row by row, blocks within a row."""
    lines = _forward_header(pixels, vectors, "forward_row3") + [f"            full = ow - ow % {pixels}",
                                                                 "            for oy in range(oh):"]
    return lines + _blocks_then_rest(f"                for ox in range(0, full, {pixels}):",
                                     "                for ox in range(full, ow):", _forward_row3_block, pixels,
                                     vectors, 5)


def _weight_grad_block(channels, vectors):
    """dw[i, j, cb + q, ob + L v] for q < channels: the sum over one image's output pixels."""
    acc, lines = _accumulators(channels, vectors)
    lines += ["for y in range(oh):",
              "    xo = xb + ((y * sh + i) * wp + j) * c + cb",
              "    go = (b * oh + y) * ow * oc + ob",
              "    for ox in range(ow):"]
    body = _rank_one_update(acc, "gy", "go", lambda q: f"sload(xflat, xo + {q})")
    body += ["xo += step", "go += oc"]
    lines += _indent(body, 2)
    lines.append("po = (((t * kh + i) * kw + j) * c + cb) * oc + ob")
    lines += [f"vaddstore(partial, po + {q} * oc + {v} * L, {acc[q][v]})"
              for q in range(channels) for v in range(vectors)]
    return lines


def _weight_grad_source(channels, vectors, block=_weight_grad_block, name="weight_grad", taps="range(kw)"):
    """partial (T, KH, KW, C, OC), zeroed: thread t sums its share of the batch into partial[t] (its
    halo buffer t holds the padded image, as in the forward)."""
    lines = [f"def {name}(x, gy, partial, kh, kw, sh, sw, ph, pw, halo):"] + _INPUT + [
             "    oh, ow, oc = gy.shape[1], gy.shape[2], gy.shape[3]",
             "    per = (n + threads - 1) // threads",
             "    step = sw * c",
             f"    full = c - c % {channels}",
             "    for t in prange(threads):",
             "        xflat = halo[t].reshape(-1) if padding else xall",
             "        for b in range(t * per, min(n, (t + 1) * per)):"]
    lines += _padded_image(3) + [
             "            for i in range(kh):",
             f"                for j in {taps}:",
             f"                    for ob in range(0, oc, L * {vectors}):"]
    return lines + _blocks_then_rest(f"                        for cb in range(0, full, {channels}):",
                                     "                        for cb in range(full, c):",
                                     block, channels, vectors, 7)


def _weight_grad_row3_block(channels, vectors):
    """dw[i, j, cb + q, ob + L v] for all three taps j of row i at once. The input pixel xp meets gy at the
    output pixels xp - j, so a window of three gy vectors slides along the row: per input pixel, one gy
    vector load and ``channels`` input values feed 3 x channels multiply-adds per vector (the per-tap block
    loads one gy vector per ``channels`` of them). Pixels near the row's ends, where a tap has no output
    pixel, take only their real taps (a zero stand-in would turn an infinite input into NaN)."""
    acc = [[[f"a{j}_{q}_{v}" for v in range(vectors)] for q in range(channels)] for j in range(3)]
    lines = [f"{name} = vzero()" for tap in acc for row in tap for name in row]

    def inputs(offset):
        return [f"s{q} = sload(xflat, {offset} + {q})" for q in range(channels)]

    def update(j, vector):
        return [f"{acc[j][q][v]} = vsfma(s{q}, {vector(v)}, {acc[j][q][v]})"
                for q in range(channels) for v in range(vectors)]

    edge = inputs("xrow + xp * c")
    for j in range(3):
        edge += [f"if xp - {j} >= 0 and xp - {j} < ow:"]
        edge += _indent([f"e{v} = vload(gy, grow + (xp - {j}) * oc + {v} * L)" for v in range(vectors)], 1)
        edge += _indent(update(j, lambda v: f"e{v}"), 1)
    steady = [f"g0_{v} = vload(gy, grow + xp * oc + {v} * L)" for v in range(vectors)]
    steady += inputs("xrow + xp * c")
    for j in range(3):
        steady += update(j, lambda v, j=j: f"g{j}_{v}")
    steady += [f"g2_{v} = g1_{v}" for v in range(vectors)] + [f"g1_{v} = g0_{v}" for v in range(vectors)]
    lines += ["for y in range(oh):",
              "    xrow = xb + (y * sh + i) * wp * c + cb",
              "    grow = (b * oh + y) * ow * oc + ob",
              "    for xp in range(0, 2):"]
    lines += _indent(edge, 2)
    lines += ["    if ow > 2:"]
    lines += _indent([f"g1_{v} = vload(gy, grow + oc + {v} * L)" for v in range(vectors)], 2)
    lines += _indent([f"g2_{v} = vload(gy, grow + {v} * L)" for v in range(vectors)], 2)
    lines += ["        for xp in range(2, ow):"] + _indent(steady, 3)
    lines += ["    for xp in range(max(2, ow), ow + 2):"] + _indent(edge, 2)
    lines.append("po = ((t * kh + i) * 3 * c + cb) * oc + ob")
    lines += [f"vaddstore(partial, po + ({j} * c + {q}) * oc + {v} * L, {acc[j][q][v]})"
              for j in range(3) for q in range(channels) for v in range(vectors)]
    return lines


def _weight_grad_row3_source(channels, vectors):
    """weight_grad() for kw == 3 and sw == 1 (the caller checks): the taps of a row in one block."""
    return _weight_grad_source(channels, vectors, _weight_grad_row3_block, "weight_grad_row3", "range(1)")


def _weight_grad_cl_block(outputs, vectors):
    """grad[o + q, i, j, cb + L v] for q < outputs: the sum over every image's output pixels that tap (i, j)
    meets inside the image of gy[.., o + q] x[.., cb + L v]. The roles of the per-tap block are swapped
    (input channels in the vectors, output channels as scalars), so the sums land in the channels-last
    gradient's own memory order."""
    acc, lines = _accumulators(outputs, vectors)
    lines += ["for b in range(n):",
              "    for oy in range(ylo, yhi):",
              "        xo = ((b * h + oy * sh + i - ph) * wd + xlo * sw + j - pw) * c + cb",
              "        go = ((b * oh + oy) * ow + xlo) * oc + o",
              "        for ox in range(xlo, xhi):"]
    body = _rank_one_update(acc, "xall", "xo", lambda q: f"sload(gflat, go + {q})")
    body += ["xo += step", "go += oc"]
    lines += _indent(body, 3)
    lines.append("to = (o * kh * kw + i * kw + j) * c + cb")
    lines += [f"vstore(grad, to + {q} * kh * kw * c + {v} * L, {acc[q][v]})"
              for q in range(outputs) for v in range(vectors)]
    return lines


def _weight_grad_cl_source(outputs, vectors):
    """grad (OC * KH * KW * C,), the channels-last gradient's memory; x (N, H, W, C) unpadded: a tap reads only
    the output pixels whose input lies inside the image (the padding adds nothing). One task per tap, chunk
    of input channels and block of output channels, each over the whole batch: no per-thread partial sums
    and no reordering afterwards, for layers whose activations are small enough to be read once per task."""
    lines = ["def weight_grad_cl(x, gy, grad, kh, kw, sh, sw, ph, pw):",
             "    n, h, wd, c = x.shape",
             "    xall, gflat = x.reshape(-1), gy.reshape(-1)",
             "    oh, ow, oc = gy.shape[1], gy.shape[2], gy.shape[3]",
             "    step = sw * c",
             f"    chunks, blocks = c // (L * {vectors}), oc // {outputs}",
             "    for task in prange(kh * kw * chunks * blocks):",
             "        tap, rest = task // (chunks * blocks), task % (chunks * blocks)",
             f"        cb, o = rest // blocks * L * {vectors}, rest % blocks * {outputs}",
             "        i, j = tap // kw, tap % kw",
             "        ylo, yhi = max(0, (ph - i + sh - 1) // sh), min(oh, (h - 1 + ph - i) // sh + 1)",
             "        xlo, xhi = max(0, (pw - j + sw - 1) // sw), min(ow, (wd - 1 + pw - j) // sw + 1)"]
    return lines + _indent(_weight_grad_cl_block(outputs, vectors), 2)


def _scatter_block(pixels, vectors):
    """dxpad[.., cb + L v] += sum_o gy[b, q + p, o] w[i, j, cb + L v, o], tap by tap, for the output pixels
    q + p counted along the image's rows (a block may wrap onto the next row, as in the forward)."""
    lines = []
    for p in range(pixels):
        lines += [f"oy, ox = divmod(q + {p}, ow)", f"d{p} = ((b * hp + oy * sh) * wp + ox * sw) * c + cb"]
    acc, body = _accumulators(pixels, vectors)
    lines += ["for i in range(kh):",
              "    for j in range(kw):"]
    body += ["go = (b * oh * ow + q) * oc",
             "wo = (i * kw + j) * oc * c + cb",
             "for o in range(oc):"]
    inner = _rank_one_update(acc, "wt", "wo", lambda p: f"sload(gflat, go + {p} * oc)")
    inner += ["go += 1", "wo += c"]
    body += _indent(inner, 1)
    body.append("do = (i * wp + j) * c")
    body += [f"vaddstore(dxpad, d{p} + do + {v} * L, {acc[p][v]})" for p in range(pixels) for v in range(vectors)]
    return lines + _indent(body, 2)


def _scatter_source(pixels, vectors):
    """wt (KH, KW, OC, C); dxpad (N, HP, WP, C) zeroed; one image per thread, so the += never race."""
    lines = ["def input_grad_scatter(gy, wt, dxpad, kh, kw, sh, sw):",
             "    gflat = gy.reshape(-1)",
             "    n, oh, ow, oc = gy.shape",
             "    hp, wp, c = dxpad.shape[1], dxpad.shape[2], dxpad.shape[3]",
             f"    full = oh * ow - oh * ow % {pixels}",
             "    for b in prange(n):",
             f"        for cb in range(0, c, L * {vectors}):"]
    return lines + _blocks_then_rest(f"            for q in range(0, full, {pixels}):",
                                     "            for q in range(full, oh * ow):", _scatter_block, pixels, vectors, 4)


_SOURCES = {"forward": _forward_source, "forward_row3": _forward_row3_source, "weight_grad": _weight_grad_source,
            "forward_tiled": _forward_tiled_source, "weight_grad_row3": _weight_grad_row3_source,
            "weight_grad_cl": _weight_grad_cl_source,
            "input_grad_scatter": _scatter_source}
# A bounds-checked build (jit.BOUNDS_CHECKED) compiles afresh, checking every index:
# its source differs, so it never shares a file or numba's cached machine code with the fast build.
_DECORATOR = f"@njit(parallel=True, cache={CACHE_ON_DISK}, boundscheck={BOUNDS_CHECKED}, error_model='numpy')"


def _header(lanes):
    return ["# Generated by minires.kernels.direct.fast; do not edit (regenerated when the generator changes).",
            "from numba import njit, prange",
            "from minires.kernels.direct.simd import vector_ops",
            "",
            f"L = {lanes}  # float32 lanes of a vector",
            "sload, vaddstore, vload, vsfma, vstore, vzero = (getattr(vector_ops(L), op) for op in "
            "('sload', 'vaddstore', 'vload', 'vsfma', 'vstore', 'vzero'))",
            "", ""]


# --- generated kernels, cached on disk --------------------------------------------------------------------

def cache_directory():
    """Where generated kernel sources (and numba's cached machine code beside them) live: MINIRES_CACHE_DIR,
    else $XDG_CACHE_HOME/minires or ~/.cache/minires, else a directory under the system's temp folder."""
    configured = os.environ.get("MINIRES_CACHE_DIR")
    base = pathlib.Path(configured) if configured else \
        pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "minires"
    for candidate in (base / "kernels", pathlib.Path(tempfile.gettempdir()) / f"minires-{os.getuid()}" / "kernels"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            continue
    raise StorageError(f"minires: no writable directory for compiled kernels (tried {base}; set MINIRES_CACHE_DIR)")


_lock = threading.Lock()
_kernels = {}  # (kind, block, vectors, lanes) -> numba dispatcher
_compile_seconds = {}  # (kind, block, vectors, lanes) -> seconds of the first call (compile or cache load)


def generated_source(kind, block, vectors, lanes):
    """The Python source of one kernel specialisation, as written to the cache directory."""
    body = _SOURCES[kind](block, vectors)
    return "\n".join(_header(lanes) + [_DECORATOR] + body) + "\n"


def _generated(kind, block, vectors, lanes):
    key = (kind, block, vectors, lanes)
    with _lock:
        if key not in _kernels:
            source = generated_source(*key)
            digest = hashlib.sha1(source.encode()).hexdigest()[:12]
            name = f"direct_{kind}_{block}x{vectors}x{lanes}_{digest}"
            path = cache_directory() / f"{name}.py"
            if not path.exists():
                temporary = path.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(source)
                os.replace(temporary, path)  # other processes see the whole file or none
            spec = importlib.util.spec_from_file_location(f"minires_{name}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # numba's on-disk cache finds the kernel's globals by module name
            spec.loader.exec_module(module)
            _kernels[key] = getattr(module, kind)
        return _kernels[key]


def _execute(block, args, lanes):
    key = (block.kind, block.size, block.vectors, lanes)
    kernel = _generated(*key)
    if key in _compile_seconds:
        return kernel(*args)
    start = time.perf_counter()
    result = kernel(*args)
    _compile_seconds[key] = time.perf_counter() - start
    return result


def compile_report():
    """{kernel specialisation: seconds its first call took in this process (compiling, or loading from the
    on-disk cache)}."""
    return {f"{kind} {block}x{vectors} ({lanes} lanes)": seconds
            for (kind, block, vectors, lanes), seconds in _compile_seconds.items()}


_tuner = None


def tuner():
    """The process's autotuner (tune.py), its file beside the compiled kernels, keyed by this CPU."""
    global _tuner
    if _tuner is None:
        generator = hashlib.sha1(pathlib.Path(__file__).read_bytes() +
                                 pathlib.Path(blocks.__file__).read_bytes()).hexdigest()[:12]
        _tuner = tune.Tuner(cache_directory(), isa.machine_key(), generator)
    return _tuner


def _run(kinds, profile, vector_count, args, limit=None, divides=None):
    """Run ``args`` (a layer) with the kernel and register block the tuner chooses for it on this machine,
    among the blocks of ``kinds`` (kernels of one signature that compute the same sums; the first preferred)."""
    lanes = profile.lanes
    options = blocks.choices(kinds, profile, vector_count, limit, divides)
    block = tuner().choose(kinds[0], args, options, lambda b, a: _execute(b, a, lanes))
    return _execute(block, args, lanes)


# --- which kernel runs a layer ------------------------------------------------------------------------------

def _kinds(per_tap, kernel, stride, channels):
    """The kernels that can compute a layer, the preferred first: the row-of-taps kind (``per_tap`` + "_row3")
    too for 3-wide kernels at horizontal stride 1, preferred with at most 32 channels (the per-tap block then
    holds at most 32 channels' vectors and is bound by loads, one input value per multiply-add; measured on
    AVX-512, 16->16 at 32x32: 1.43 ms against 2.73 ms). The tuner times both."""
    if kernel[1] != 3 or stride[1] != 1:
        return [per_tap]
    return [per_tap + "_row3", per_tap] if channels <= 32 else [per_tap, per_tap + "_row3"]


def _small_activations(x, gy):
    """Whether dW should run as weight_grad_cl (each task reads the whole batch, from cache) rather than
    per image with partial sums per thread. Measured on a 2-core AVX-512 machine at batch 32 (ms, per image /
    cl with 8 output channels x 2 vectors): 512->512 at 2x2 7.52 / 1.28, 256->256 at 4x4 3.01 / 1.54, 1x1
    256->1024 at 4x4 1.80 / 0.92, 1x1 1024->256 at 4x4 1.04 / 1.02 (x + gy 2.5 MiB), 128->128 at 8x8 1.61 /
    1.61 (2 MiB), 64->64 at 16x16 1.79 / 2.22 (4 MiB)."""
    return x.nbytes + gy.nbytes <= 3 * 2**20


TILED_GROUP_PIXELS = 64  # output pixels per forward_tiled task (a group of whole images)
TILED_TAP_CHANNELS = 576  # taps x input channels per tile: 64 channels of a 3x3 kernel, 576 of a 1x1


def _tiled(out_size, channels):
    """Whether the forward runs as forward_tiled: images of at most 8x8 output pixels with 128 or more input
    channels. Measured on AVX-512 at batch 32 (ms, per image / tiled): 512->512 at 2x2 2.98 / 1.75, 256->256
    at 4x4 2.62 / 1.34, 128->128 at 8x8 1.33 / 1.23, 1x1 1024->256 at 4x4 0.92 / 0.71, 1x1 2048->512 at 2x2
    1.31 / 0.79; 64->64 at 16x16 1.22 / 1.17 (left per image)."""
    return out_size[0] * out_size[1] <= 64 and channels >= 128


# --- entry points on NHWC arrays ---------------------------------------------------------------------------

def kernel_weight_loops(weight, flip, swap, width):
    """The weight (OC, C, KH, KW), any memory order, as the kernels read it: (KH, KW, C, OC) with OC
    zero-padded to ``width``, or with ``swap`` (KH, KW, OC, C) with C padded, taps reversed with ``flip``
    (dx as a forward convolution). One parallel pass in 16-channel tiles, so both the reads and the writes
    run along memory whether the weight is channels-last or not (NumPy's transposing copy of a 512 x 512
    3x3 weight took 3-5 ms on one core)."""
    oc, c, kh, kw = weight.shape
    out = np.zeros((kh, kw, oc if swap else c, width), dtype=weight.dtype)
    tiles = (c + 15) // 16
    for task in prange(kh * kw * tiles):  # (tap, tile of 16 input channels): a 1x1 weight has many tiles
        tap, cb = task // tiles, task % tiles * 16
        i, j = tap // kw, tap % kw
        si, sj = (kh - 1 - i, kw - 1 - j) if flip else (i, j)
        for o in range(oc):
            for ch in range(cb, min(cb + 16, c)):
                if swap:
                    out[i, j, o, ch] = weight[o, ch, si, sj]
                else:
                    out[i, j, ch, o] = weight[o, ch, si, sj]
    return out


def summed_weight_grad_loops(partial, grad):
    """grad[o, c, i, j] = sum over threads t of partial[t, i, j, c, o], written into ``grad`` (OC, C, KH, KW),
    whatever its memory order; tiles of 16 channels as in kernel_weight_loops."""
    threads, kh, kw, c = partial.shape[:4]
    oc, tiles = grad.shape[0], (c + 15) // 16
    for task in prange(kh * kw * tiles):
        tap, cb = task // tiles, task % tiles * 16
        i, j = tap // kw, tap % kw
        for o in range(oc):
            for ch in range(cb, min(cb + 16, c)):
                total = partial[0, i, j, ch, o]
                for t in range(1, threads):
                    total += partial[t, i, j, ch, o]
                grad[o, ch, i, j] = total


kernel_weight = parallel_jit(kernel_weight_loops)
summed_weight_grad = parallel_jit(summed_weight_grad_loops)


def _round_up(channels, lanes):
    return -(-channels // lanes) * lanes


def _pad_last_axis(a, size):
    if a.shape[-1] == size:
        return np.ascontiguousarray(a)
    padded = np.zeros(a.shape[:-1] + (size,), dtype=a.dtype)
    padded[..., :a.shape[-1]] = a
    return padded


def _halo(x, padding, tasks, images=None):
    """One zeroed buffer per thread for a padded image (a one-element stand-in without padding), or for a
    group of ``images`` padded images (forward_tiled copies into it even without padding)."""
    n, h, w, c = x.shape
    (ph, pw), threads = padding, max(1, min(numba.get_num_threads(), tasks))
    if images is not None:
        return np.zeros((threads, images, h + 2 * ph, w + 2 * pw, c), dtype=np.float32)
    return np.zeros((threads, h + 2 * ph, w + 2 * pw, c) if ph or pw else (threads, 1, 1, 1), dtype=np.float32)


def output_size(size, kernel, stride, padding):
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, padding))


def _profile():
    profile = isa.current()
    if not profile.lanes:
        raise DeviceError(f"the direct convolution kernels have no vector profile for this CPU ({isa.describe()}); "
                          "conv2d runs im2col here")
    return profile


def forward(x, weight, stride, padding):
    """y (N, OH, OW, OC) from x (N, H, W, C), zero-padded by ``padding`` on each side, and weight
    (OC, C, KH, KW), both float32."""
    oc, profile = weight.shape[0], _profile()
    w = kernel_weight(weight, False, False, _round_up(oc, profile.lanes))
    return _forward(x, w, oc, stride, padding, profile)


def _forward(x, w, oc, stride, padding, profile):
    """forward() with the weight already laid out for the kernels: w (KH, KW, C, OC rounded up)."""
    x, (kh, kw), lanes = np.ascontiguousarray(x), w.shape[:2], profile.lanes
    out_size = output_size(x.shape[1:3], (kh, kw), stride, padding)
    out = np.empty((x.shape[0], *out_size, w.shape[-1]), dtype=np.float32)
    vector_count = w.shape[-1] // lanes
    if _tiled(out_size, x.shape[-1]):
        kinds = ["forward_tiled"]
        vectors = blocks.default_vectors(kinds[0], profile, vector_count)
        group = max(1, TILED_GROUP_PIXELS // (out_size[0] * out_size[1]))
        halo = _halo(x, padding, vector_count // vectors * -(-x.shape[0] // group), group)
        tile = max(lanes, TILED_TAP_CHANNELS // (kh * kw) // lanes * lanes)
        args = (x, w, out, kh, kw, *stride, *padding, halo, tile)
    else:
        kinds = _kinds("forward", (kh, kw), stride, w.shape[-1])
        vectors = blocks.default_vectors(kinds[0], profile, vector_count)
        halo = _halo(x, padding, vector_count // vectors * x.shape[0])
        args = (x, w, out, kh, kw, *stride, *padding, halo)
    _run(kinds, profile, vector_count, args)
    return out if out.shape[-1] == oc else np.ascontiguousarray(out[..., :oc])


def weight_grad(x, gy, kernel, stride, padding, channels_last=False):
    """dW (OC, C, KH, KW) from the input (N, H, W, C), zero-padded by ``padding``, and gy (N, OH, OW, OC);
    its memory is (OC, KH, KW, C) when ``channels_last`` (a gradient is laid out like its weight, as in
    torch)."""
    x, oc, c, profile = np.ascontiguousarray(x), gy.shape[-1], x.shape[-1], _profile()
    lanes = profile.lanes
    pointwise = tuple(kernel) == (1, 1)  # its memory is the same in both formats
    if (channels_last or pointwise) and _small_activations(x, gy) and c % lanes == 0 and oc % 2 == 0 \
            and not (padding != (0, 0) and _has_non_finite(gy)):
        grad = np.empty((oc, *kernel, c), np.float32)  # the channels-last gradient's memory
        args = (x, np.ascontiguousarray(gy), grad.reshape(-1), *kernel, *stride, *padding)
        _run(["weight_grad_cl"], profile, c // lanes, args, divides=oc)
        return grad.reshape(oc, c, 1, 1) if pointwise else grad.transpose(0, 3, 1, 2)
    gy = _pad_last_axis(gy, _round_up(oc, lanes))
    halo = _halo(x, padding, x.shape[0])
    partial = np.zeros((halo.shape[0], *kernel, c, gy.shape[-1]), dtype=np.float32)
    _run(_kinds("weight_grad", kernel, stride, gy.shape[-1]), profile, gy.shape[-1] // lanes,
         (x, gy, partial, *kernel, *stride, *padding, halo), limit=c)
    grad = np.empty((oc, *kernel, c), np.float32).transpose(0, 3, 1, 2) if channels_last else \
        np.empty((oc, c, *kernel), np.float32)
    summed_weight_grad(partial, grad)
    return grad


def _has_non_finite(a):
    """Whether ``a`` holds an inf or NaN: weight_grad_cl and the dx gather skip the padding's zeros, and a
    zero times inf is NaN in the reference (and in torch), so such inputs take the paths that multiply them."""
    return not np.isfinite(a).all()


def _swapped_weight(weight, flip, lanes):
    """The weight as dx reads it, (KH, KW, OC, C rounded up), taps reversed with ``flip``. From channels-last
    memory (OC, KH, KW, C) that is a copy of whole rows of C (for 1x1 kernels no copy at all: 0.19 ms for a
    512 x 512 3x3 weight against 0.86 for the element-wise pass)."""
    oc, c = weight.shape[:2]
    memory = weight.transpose(0, 2, 3, 1)
    if c % lanes or not memory.flags.c_contiguous:
        return kernel_weight(weight, flip, True, _round_up(c, lanes))
    taps = memory[:, ::-1, ::-1, :] if flip else memory
    return np.ascontiguousarray(taps.transpose(1, 2, 0, 3))


def input_grad(gy, weight, stride, padding, in_size):
    """dx (N, H, W, C) from gy (N, OH, OW, OC) and weight (OC, C, KH, KW)."""
    (kh, kw), (ph, pw), (h, w) = weight.shape[2:], padding, in_size
    c, profile = weight.shape[1], _profile()
    if stride == (1, 1) and kh - 1 - ph >= 0 and kw - 1 - pw >= 0 and not (padding != (0, 0) and
                                                                          _has_non_finite(weight)):
        # the gather: dx is the forward convolution of gy (padded by K - 1 - P) with the kernel flipped and
        # its channel axes swapped
        flipped = _swapped_weight(weight, True, profile.lanes)  # (KH, KW, OC, C rounded up)
        return _forward(gy, flipped, c, (1, 1), (kh - 1 - ph, kw - 1 - pw), profile)
    wt = _swapped_weight(weight, False, profile.lanes)  # (KH, KW, OC, C rounded up)
    dxpad = np.zeros((gy.shape[0], h + 2 * ph, w + 2 * pw, wt.shape[-1]), dtype=np.float32)
    _run(["input_grad_scatter"], profile, wt.shape[-1] // profile.lanes,
         (np.ascontiguousarray(gy), wt, dxpad, kh, kw, *stride))
    return np.ascontiguousarray(dxpad[:, ph:ph + h, pw:pw + w, :c])
