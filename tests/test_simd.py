"""kernels/simd.py's five vector operations, for each width the ISA profiles use (4, 8 and 16 lanes), in their
three builds: the compiled intrinsics (exact against NumPy, the multiply-add fused), the plain-Python twins
NUMBA_DISABLE_JIT=1 runs, and the bounds-checked build of NUMBA_BOUNDSCHECK=1 (in a subprocess, since numba
reads its configuration at import)."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from minires.errors import DTypeError
from minires.kernels.direct import simd

WIDTHS = [4, 8, 16]
# One program over every operation: out[2:2+L] = s a[3:3+L] + b[0] b[1:1+L]; out[20:20+L] += a[0:L].
PROGRAM = """
def program(a, b, out, s):
    acc = vsfma(s, vload(a, 3), vzero())
    acc = vsfma(b[0], vload(b, 1), acc)
    vstore(out, 2, acc)
    vaddstore(out, 20, vload(a, 0))
"""


def _build(ops, compile_it):
    namespace = {name: getattr(ops, name) for name in ("vzero", "vload", "vstore", "vaddstore", "vsfma")}
    exec(PROGRAM, namespace)
    return numba.njit(namespace["program"]) if compile_it else namespace["program"]


def _inputs(lanes):
    a = (np.arange(40, dtype=np.float32) - 7) * 0.5
    b = np.arange(20, dtype=np.float32)[::-1].copy() * 0.25 + 1
    out = np.arange(50, dtype=np.float32)
    expected = out.copy()
    expected[2:2 + lanes] = np.float32(1.5) * a[3:3 + lanes] + b[0] * b[1:1 + lanes]  # exact in float32
    expected[20:20 + lanes] += a[0:lanes]
    return a, b, out, expected


jit_on = pytest.mark.skipif(bool(numba.config.DISABLE_JIT), reason="the intrinsics exist only compiled")


@pytest.mark.parametrize("lanes", WIDTHS)
@pytest.mark.parametrize("build, compile_it", [pytest.param("compiled", True, marks=jit_on), ("python", False)])
def test_every_operation_reads_and_writes_exactly_its_lanes(lanes, build, compile_it):
    a, b, out, expected = _inputs(lanes)
    _build(getattr(simd.vector_ops(lanes), build), compile_it)(a, b, out, 1.5)
    np.testing.assert_array_equal(out, expected)


@jit_on
@pytest.mark.parametrize("lanes", WIDTHS)
def test_the_compiled_multiply_add_rounds_once(lanes):
    """(1 + 2^-12)^2 - 1 = 2^-11 + 2^-24 exactly when fused; the product rounded first loses the 2^-24."""
    x = np.float32(1 + 2.0 ** -12)
    ops = simd.vector_ops(lanes).compiled
    vload, vstore, vsfma = ops.vload, ops.vstore, ops.vsfma

    @numba.njit
    def fused(v, acc, out):
        vstore(out, 0, vsfma(x, vload(v, 0), vload(acc, 0)))

    v, acc, out = np.full(lanes, x, np.float32), np.full(lanes, -1, np.float32), np.zeros(lanes, np.float32)
    fused(v, acc, out)
    np.testing.assert_array_equal(out, np.float32(2.0 ** -11 + 2.0 ** -24))


@jit_on
def test_the_compiled_operations_refuse_an_array_that_is_not_float32():
    program = _build(simd.vector_ops(8).compiled, True)
    a, b, out, _ = _inputs(8)
    with pytest.raises(DTypeError, match=r"^simd: expected a float32 array, got array\(float64, 1d, C\)$"):
        program(a.astype(np.float64), b, out, 1.5)
    assert [str(simd.vector_ops(lanes).type) for lanes in WIDTHS] == ["float32x4", "float32x8", "float32x16"]
    assert simd.vector_ops(8) is simd.vector_ops(8)  # one set of intrinsics per width


@pytest.mark.parametrize("lanes", WIDTHS)
@pytest.mark.parametrize("op", ["vload", "vstore", "vaddstore"])
def test_the_python_vectors_refuse_lanes_outside_the_array(lanes, op):
    python = simd.vector_ops(lanes).python
    call = {"vload": lambda a, i: python.vload(a, i),
            "vstore": lambda a, i: python.vstore(a, i, np.zeros(lanes, np.float32)),
            "vaddstore": lambda a, i: python.vaddstore(a, i, np.ones(lanes, np.float32))}[op]
    a = np.zeros((3, 12), np.float32)  # 36 elements, reached through the flat memory as the intrinsics do
    call(a, 36 - lanes)
    for index in (36 - lanes + 1, -1):
        with pytest.raises(IndexError, match=rf"^simd.{op}: lanes {index}\.\.{index + lanes - 1} outside an array of 36$"):
            call(a, index)
    with pytest.raises(DTypeError, match=rf"^simd.{op}: expected a C-contiguous float32 array, got float64$"):
        call(a.astype(np.float64), 0)
    with pytest.raises(DTypeError, match=rf"simd.{op}"):
        call(np.zeros((36, 2), np.float32)[:, 0], 0)


@pytest.mark.parametrize("build", [pytest.param("compiled", marks=jit_on), "python"])
def test_sload_reads_one_element_of_the_flat_memory(build):
    sload = getattr(simd.vector_ops(8), build).sload
    read = numba.njit(lambda a, i: sload(a, i)) if build == "compiled" else sload
    a = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5
    assert [read(a, i) for i in (0, 5, 11)] == [0.0, 2.5, 5.5]
    if build == "python":
        for index in (12, -1):
            with pytest.raises(IndexError, match=rf"^simd.sload: element {index} outside an array of 12$"):
                read(a, index)


def test_the_python_vectors_write_into_the_array_itself():
    python, lanes = simd.vector_ops(16).python, 16
    a = np.zeros((2, 20), np.float32)
    python.vstore(a, 18, np.arange(lanes, dtype=np.float32))
    python.vaddstore(a, 18, np.ones(lanes, np.float32))
    np.testing.assert_array_equal(a.reshape(-1)[18:34], np.arange(lanes) + 1)
    assert not a.reshape(-1)[:18].any() and not a.reshape(-1)[34:].any()
    assert python.vzero().dtype == np.float32 and not python.vzero().any()
    assert python.vsfma(2, np.ones(lanes, np.float32), np.ones(lanes, np.float32)).dtype == np.float32


CHECKED_RUN = """
import numba, numpy as np
from minires.kernels import jit
from minires.kernels.direct import fast as direct_conv, simd
assert simd.BOUNDS_CHECKED and not jit.CACHE_ON_DISK
assert "boundscheck=True" in direct_conv._DECORATOR and "cache=False" in direct_conv._DECORATOR

ops = simd.vector_ops(16)
compiled_vstore, vload, vstore, vaddstore, vzero = ops.compiled.vstore, ops.vload, ops.vstore, ops.vaddstore, ops.vzero

@numba.njit
def load(a, i):
    compiled_vstore(a, 0, vload(a, i))

@numba.njit
def store(a, i):
    vstore(a, i, vzero())

@numba.njit
def add(a, i):
    vaddstore(a, i, vzero())

sload = ops.sload
read = numba.njit(lambda a, i: sload(a, i))
assert read(np.arange(4, dtype=np.float32), 3) == 3.0
for i in (4, -1):
    try:
        read(np.arange(4, dtype=np.float32), i)
    except IndexError as e:
        assert str(e) == "simd: a scalar access reaches outside its array (NUMBA_BOUNDSCHECK=1)", str(e)
    else:
        raise SystemExit(f"sload at {i}: no error")

# a generated kernel of the bounds-checked build compiles and runs: a scatter dx against NumPy's loops
gy = np.random.default_rng(0).standard_normal((2, 3, 2, 16)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((16, 16, 1, 1)).astype(np.float32)
dx = direct_conv.input_grad(gy, w, (2, 2), (0, 0), (5, 4))
expected = np.zeros((2, 5, 4, 16), np.float32)
expected[:, ::2, ::2] = gy @ w[:, :, 0, 0]
assert np.allclose(dx, expected, atol=1e-5), "the bounds-checked scatter"

a = np.ones(40, np.float32)
for f in (load, store, add):
    f(a, 40 - 16)
    for i in (40 - 15, -1):
        try:
            f(a, i)
        except IndexError as e:
            assert str(e) == "simd: a vector access reaches outside its array (NUMBA_BOUNDSCHECK=1)", str(e)
        else:
            raise SystemExit(f"{f} at {i}: no error")
print("checked")
"""


def test_the_bounds_checked_build_refuses_an_index_outside_the_array():
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_DISABLE_JIT="0", NUMBA_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CHECKED_RUN)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "checked", result.stderr[-3000:]


@pytest.mark.parametrize("lanes", WIDTHS)
def test_the_fast_build_is_the_intrinsics_and_caches(lanes):
    ops = simd.vector_ops(lanes)
    if numba.config.DISABLE_JIT:
        assert ops.vload is ops.python.vload and ops.vsfma is ops.python.vsfma
    elif not numba.config.BOUNDSCHECK:
        assert (ops.vload, ops.vstore, ops.vaddstore) == (ops.compiled.vload, ops.compiled.vstore,
                                                          ops.compiled.vaddstore)
        assert not simd.BOUNDS_CHECKED
