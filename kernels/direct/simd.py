"""Explicit float32 vectors for numba kernels: the few vector operations a direct convolution needs, exposed
through ``numba.extending.intrinsic`` as LLVM's ``<16 x float>`` type.

Why: numba's auto-vectoriser vectorises an inner loop, but it never keeps a *register block* — a tile of
accumulators that lives in vector registers across a whole reduction — which is what makes oneDNN's direct
convolutions fast. With these helpers a kernel names its accumulators (``a0 = vzero()``) and LLVM keeps each
one in a register: one zmm on AVX-512, two ymm on AVX2, four q-registers on ARM NEON.

    vzero()                 a vector of LANES zeros
    vload(a, i)             a.flat[i : i + LANES] as a vector (a is C-contiguous float32, i a flat index)
    vstore(a, i, v)         a.flat[i : i + LANES] = v
    vaddstore(a, i, v)      a.flat[i : i + LANES] += v
    vsfma(s, v, acc)        s * v + acc for a float32 scalar s broadcast to every lane (one fused multiply-add)

Compiled as they are, no bounds are checked (the loads are the point of the exercise): the callers in
direct_conv.py only index inside arrays whose last axis is a multiple of LANES, and their tests check every
edge against the im2col reference. Loads and stores assume 4-byte alignment only. Two other builds of the same
names are chosen at import, from numba's configuration:
    NUMBA_DISABLE_JIT=1    plain Python twins on NumPy slices (a generated kernel then runs, slowly, as the
                           Python it is: for reading, stepping through, and mutation testing)
    NUMBA_BOUNDSCHECK=1    every vector access checked first: an index outside its array raises IndexError
                           (tests run so in CI) instead of reading or corrupting memory
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic, models, register_model

from minires.errors import DTypeError

from ..jit import BOUNDS_CHECKED

LANES = 16
_VECTOR = ir.VectorType(ir.FloatType(), LANES)


class Float32Vector(types.Type):
    def __init__(self):
        super().__init__(name=f"float32x{LANES}")


float32_vector = Float32Vector()


@register_model(Float32Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VECTOR)


def _address(context, builder, array_type, array, index):
    """A <LANES x float>* to element ``index`` of the array's flat data."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), _VECTOR.as_pointer())


def _broadcast(builder, scalar):
    lane0 = builder.insert_element(ir.Constant(_VECTOR, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    everywhere = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
    return builder.shuffle_vector(lane0, ir.Constant(_VECTOR, ir.Undefined), everywhere)


def _check_float32_array(array):
    if not (isinstance(array, types.Array) and array.dtype == types.float32):
        raise DTypeError(f"simd: expected a float32 array, got {array}")


@intrinsic
def vzero(typingctx):
    def codegen(context, builder, signature, args):
        return ir.Constant(_VECTOR, [0.0] * LANES)
    return float32_vector(), codegen


@intrinsic
def vload(typingctx, array, index):
    _check_float32_array(array)

    def codegen(context, builder, signature, args):
        return builder.load(_address(context, builder, signature.args[0], *args), align=4)
    return float32_vector(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, vector):
    _check_float32_array(array)

    def codegen(context, builder, signature, args):
        builder.store(args[2], _address(context, builder, signature.args[0], args[0], args[1]), align=4)
        return context.get_dummy_value()
    return types.void(array, index, vector), codegen


@intrinsic
def vaddstore(typingctx, array, index, vector):
    _check_float32_array(array)

    def codegen(context, builder, signature, args):
        pointer = _address(context, builder, signature.args[0], args[0], args[1])
        builder.store(builder.fadd(builder.load(pointer, align=4), args[2]), pointer, align=4)
        return context.get_dummy_value()
    return types.void(array, index, vector), codegen


@intrinsic
def vsfma(typingctx, scalar, vector, accumulator):
    def codegen(context, builder, signature, args):
        scalar32 = context.cast(builder, args[0], signature.args[0], types.float32)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VECTOR, [_VECTOR] * 3),
                                             f"llvm.fma.v{LANES}f32")
        return builder.call(fma, [_broadcast(builder, scalar32), args[1], args[2]])
    return float32_vector(scalar, vector, accumulator), codegen


# --- the other two builds: plain Python, and compiled with every access checked ----------------------------

def _lanes(array, index, op):
    """The LANES elements from flat ``index`` of ``array``'s memory, as a writable view; IndexError outside it."""
    if array.dtype != np.float32 or not array.flags.c_contiguous:
        raise DTypeError(f"simd.{op}: expected a C-contiguous float32 array, got {array.dtype}")
    flat = array.reshape(-1)
    if index < 0 or index + LANES > flat.size:
        raise IndexError(f"simd.{op}: lanes {index}..{index + LANES - 1} outside an array of {flat.size}")
    return flat[index:index + LANES]


def vzero_python():
    return np.zeros(LANES, np.float32)


def vload_python(array, index):
    return _lanes(array, index, "vload").copy()


def vstore_python(array, index, vector):
    _lanes(array, index, "vstore")[...] = vector


def vaddstore_python(array, index, vector):
    _lanes(array, index, "vaddstore")[...] += vector


def vsfma_python(scalar, vector, accumulator):
    return np.float32(scalar) * vector + accumulator  # two roundings where the FMA has one


def _check_lanes(array, index):
    if index < 0 or index + LANES > array.size:
        raise IndexError("simd: a vector access reaches outside its array (NUMBA_BOUNDSCHECK=1)")


compiled_vload, compiled_vstore, compiled_vaddstore = vload, vstore, vaddstore  # the intrinsics themselves


def vload_checked(array, index):
    _check_lanes(array, index)
    return compiled_vload(array, index)


def vstore_checked(array, index, vector):
    _check_lanes(array, index)
    compiled_vstore(array, index, vector)


def vaddstore_checked(array, index, vector):
    _check_lanes(array, index)
    compiled_vaddstore(array, index, vector)


if numba.config.DISABLE_JIT:
    vzero, vload, vstore, vaddstore, vsfma = vzero_python, vload_python, vstore_python, vaddstore_python, vsfma_python
elif BOUNDS_CHECKED:
    _check_lanes = numba.njit(_check_lanes)
    vload, vstore, vaddstore = (numba.njit(checked) for checked in (vload_checked, vstore_checked, vaddstore_checked))
