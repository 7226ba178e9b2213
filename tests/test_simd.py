"""kernels/simd.py's five vector operations in their three builds: the compiled intrinsics (exact against
NumPy, the multiply-add fused), the plain-Python twins NUMBA_DISABLE_JIT=1 runs, and the bounds-checked build
of NUMBA_BOUNDSCHECK=1 (in a subprocess, since numba reads its configuration at import)."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from minires.errors import DTypeError
from minires.kernels.direct import simd

LANES = simd.LANES
# One program over every operation: out[2:18] = s a[3:19] + b[0] b[1:17]; out[20:36] += a[0:16]; its sum
# of the loaded acc (to see a vector as a whole) is returned too.
PROGRAM = """
def program(a, b, out, s):
    acc = vsfma(s, vload(a, 3), vzero())
    acc = vsfma(b[0], vload(b, 1), acc)
    vstore(out, 2, acc)
    vaddstore(out, 20, vload(a, 0))
"""


def _build(ops, compile_it):
    namespace = dict(ops)
    exec(PROGRAM, namespace)
    return numba.njit(namespace["program"]) if compile_it else namespace["program"]


def _inputs():
    a = (np.arange(40, dtype=np.float32) - 7) * 0.5
    b = np.arange(20, dtype=np.float32)[::-1].copy() * 0.25 + 1
    out = np.arange(50, dtype=np.float32)
    expected = out.copy()
    expected[2:18] = np.float32(1.5) * a[3:19] + b[0] * b[1:17]  # small multiples of 1/8: exact in float32
    expected[20:36] += a[0:16]
    return a, b, out, expected


COMPILED = {"vzero": simd.vzero, "vload": simd.compiled_vload, "vstore": simd.compiled_vstore,
            "vaddstore": simd.compiled_vaddstore, "vsfma": simd.vsfma}
PYTHON = {"vzero": simd.vzero_python, "vload": simd.vload_python, "vstore": simd.vstore_python,
          "vaddstore": simd.vaddstore_python, "vsfma": simd.vsfma_python}
jit_on = pytest.mark.skipif(bool(numba.config.DISABLE_JIT), reason="the intrinsics exist only compiled")


@pytest.mark.parametrize("ops, compile_it", [pytest.param(COMPILED, True, marks=jit_on), (PYTHON, False)],
                         ids=["compiled", "python"])
def test_every_operation_reads_and_writes_exactly_its_lanes(ops, compile_it):
    a, b, out, expected = _inputs()
    _build(ops, compile_it)(a, b, out, 1.5)
    np.testing.assert_array_equal(out, expected)


@jit_on
def test_the_compiled_multiply_add_rounds_once():
    """(1 + 2^-12)^2 - 1 = 2^-11 + 2^-24 exactly when fused; the product rounded first loses the 2^-24."""
    x = np.float32(1 + 2.0 ** -12)

    @numba.njit
    def fused(v, acc, out):
        simd.compiled_vstore(out, 0, simd.vsfma(x, simd.compiled_vload(v, 0), simd.compiled_vload(acc, 0)))

    v, acc, out = np.full(LANES, x, np.float32), np.full(LANES, -1, np.float32), np.zeros(LANES, np.float32)
    fused(v, acc, out)
    np.testing.assert_array_equal(out, np.float32(2.0 ** -11 + 2.0 ** -24))


@jit_on
def test_the_compiled_operations_refuse_an_array_that_is_not_float32():
    program = _build(COMPILED, True)
    a, b, out, _ = _inputs()
    with pytest.raises(DTypeError, match=r"^simd: expected a float32 array, got array\(float64, 1d, C\)$"):
        program(a.astype(np.float64), b, out, 1.5)
    assert str(simd.float32_vector) == f"float32x{LANES}"


@pytest.mark.parametrize("op, call", [("vload", lambda a, i: simd.vload_python(a, i)),
                                      ("vstore", lambda a, i: simd.vstore_python(a, i, np.zeros(LANES, np.float32))),
                                      ("vaddstore", lambda a, i: simd.vaddstore_python(a, i, np.ones(LANES, np.float32)))])
def test_the_python_vectors_refuse_lanes_outside_the_array(op, call):
    a = np.zeros((3, 12), np.float32)  # 36 elements, reached through the flat memory as the intrinsics do
    call(a, 36 - LANES)
    for index in (36 - LANES + 1, -1):
        with pytest.raises(IndexError, match=rf"^simd.{op}: lanes {index}\.\.{index + LANES - 1} outside an array of 36$"):
            call(a, index)
    with pytest.raises(DTypeError, match=rf"^simd.{op}: expected a C-contiguous float32 array, got float64$"):
        call(a.astype(np.float64), 0)
    with pytest.raises(DTypeError, match=rf"simd.{op}"):
        call(np.zeros((36, 2), np.float32)[:, 0], 0)


def test_the_python_vectors_write_into_the_array_itself():
    a = np.zeros((2, 20), np.float32)
    simd.vstore_python(a, 18, np.arange(LANES, dtype=np.float32))
    simd.vaddstore_python(a, 18, np.ones(LANES, np.float32))
    np.testing.assert_array_equal(a.reshape(-1)[18:34], np.arange(LANES) + 1)
    assert not a.reshape(-1)[:18].any() and not a.reshape(-1)[34:].any()
    assert simd.vzero_python().dtype == np.float32 and not simd.vzero_python().any()
    assert simd.vsfma_python(2, np.ones(LANES, np.float32), np.ones(LANES, np.float32)).dtype == np.float32


CHECKED_RUN = """
import numba, numpy as np
from minires.kernels import jit
from minires.kernels.direct import fast as direct_conv, simd
assert simd.BOUNDS_CHECKED and not jit.CACHE_ON_DISK
assert "boundscheck=True" in direct_conv._DECORATOR and "cache=False" in direct_conv._DECORATOR

@numba.njit
def load(a, i):
    simd.compiled_vstore(a, 0, simd.vload(a, i))

@numba.njit
def store(a, i):
    simd.vstore(a, i, simd.vzero())

@numba.njit
def add(a, i):
    simd.vaddstore(a, i, simd.vzero())

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


def test_the_fast_build_is_the_intrinsics_and_caches():
    if numba.config.DISABLE_JIT:
        assert simd.vload is simd.vload_python and simd.vsfma is simd.vsfma_python
    elif not numba.config.BOUNDSCHECK:
        assert (simd.vload, simd.vstore, simd.vaddstore) == (simd.compiled_vload, simd.compiled_vstore,
                                                             simd.compiled_vaddstore)
        assert not simd.BOUNDS_CHECKED
