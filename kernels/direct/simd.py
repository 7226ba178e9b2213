"""Explicit float32 vectors for numba kernels: the few vector operations a direct convolution needs, exposed
through ``numba.extending.intrinsic`` as LLVM's ``<LANES x float>`` types (16, 8 or 4 lanes: isa.py says which).

Why: numba's auto-vectoriser vectorises an inner loop, but it never keeps a *register block* — a tile of
accumulators that lives in vector registers across a whole reduction — which is what makes oneDNN's direct
convolutions fast. With these helpers a kernel names its accumulators (``a0 = vzero()``) and LLVM keeps each
one in a register: one zmm on AVX-512, two ymm on AVX2, four q-registers on ARM NEON.

    vzero()                 a vector of LANES zeros
    vload(a, i)             a.flat[i : i + LANES] as a vector (a is C-contiguous float32, i a flat index)
    vstore(a, i, v)         a.flat[i : i + LANES] = v
    vaddstore(a, i, v)      a.flat[i : i + LANES] += v
    vsfma(s, v, acc)        s * v + acc for a float32 scalar s broadcast to every lane (one fused multiply-add)
    sload(a, i)             a.flat[i], a float32 scalar: an array read without numba's negative-index
                            wrap-around, whose sign test and masking per read cost more general-purpose
                            registers than a register block can spare (LLVM then folds the read into the
                            broadcast, vbroadcastss from memory)

Compiled as they are, no bounds are checked (the loads are the point of the exercise): the callers in
direct_conv.py only index inside arrays whose last axis is a multiple of LANES, and their tests check every
edge against the im2col reference. Loads and stores assume 4-byte alignment only. Two other builds of the same
names are chosen at import, from numba's configuration:
    NUMBA_DISABLE_JIT=1    plain Python twins on NumPy slices (a generated kernel then runs, slowly, as the
                           Python it is: for reading, stepping through, and mutation testing)
    NUMBA_BOUNDSCHECK=1    every vector access checked first: an index outside its array raises IndexError
                           (tests run so in CI) instead of reading or corrupting memory
"""
from types import SimpleNamespace

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic, models, register_model

from minires.errors import DTypeError

from ..jit import BOUNDS_CHECKED

LANES = 16  # the module-level operations below; fast.py builds each kernel with vector_ops(profile lanes)


def vector_ops(lanes):
    """The operations on vectors of ``lanes`` float32 (4, 8 or 16), in the build numba's configuration
    asks for. One set per width, made once: a kernel generated for AVX2 imports vector_ops(8)."""
    if lanes not in _BUILT:
        _BUILT[lanes] = _build(lanes)
    return _BUILT[lanes]


_BUILT = {}


def _build(lanes):
    vector_ir = ir.VectorType(ir.FloatType(), lanes)

    class Float32Vector(types.Type):
        def __init__(self):
            super().__init__(name=f"float32x{lanes}")

    vector_type = Float32Vector()

    @register_model(Float32Vector)
    class _VectorModel(models.PrimitiveModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, vector_ir)

    def address(context, builder, array_type, array, index):
        """A <lanes x float>* to element ``index`` of the array's flat data."""
        data = context.make_array(array_type)(context, builder, array).data
        return builder.bitcast(builder.gep(data, [index]), vector_ir.as_pointer())

    def broadcast(builder, scalar):
        lane0 = builder.insert_element(ir.Constant(vector_ir, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
        everywhere = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        return builder.shuffle_vector(lane0, ir.Constant(vector_ir, ir.Undefined), everywhere)

    @intrinsic
    def vzero(typingctx):
        def codegen(context, builder, signature, args):
            return ir.Constant(vector_ir, [0.0] * lanes)
        return vector_type(), codegen

    @intrinsic
    def vload(typingctx, array, index):
        _check_float32_array(array)

        def codegen(context, builder, signature, args):
            return builder.load(address(context, builder, signature.args[0], *args), align=4)
        return vector_type(array, index), codegen

    @intrinsic
    def vstore(typingctx, array, index, vector):
        _check_float32_array(array)

        def codegen(context, builder, signature, args):
            builder.store(args[2], address(context, builder, signature.args[0], args[0], args[1]), align=4)
            return context.get_dummy_value()
        return types.void(array, index, vector), codegen

    @intrinsic
    def vaddstore(typingctx, array, index, vector):
        _check_float32_array(array)

        def codegen(context, builder, signature, args):
            pointer = address(context, builder, signature.args[0], args[0], args[1])
            builder.store(builder.fadd(builder.load(pointer, align=4), args[2]), pointer, align=4)
            return context.get_dummy_value()
        return types.void(array, index, vector), codegen

    @intrinsic
    def sload(typingctx, array, index):
        _check_float32_array(array)

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            return builder.load(builder.gep(data, [args[1]]), align=4)
        return types.float32(array, index), codegen

    @intrinsic
    def vsfma(typingctx, scalar, vector, accumulator):
        def codegen(context, builder, signature, args):
            scalar32 = context.cast(builder, args[0], signature.args[0], types.float32)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector_ir, [vector_ir] * 3),
                                                 f"llvm.fma.v{lanes}f32")
            return builder.call(fma, [broadcast(builder, scalar32), args[1], args[2]])
        return vector_type(scalar, vector, accumulator), codegen

    compiled = SimpleNamespace(vzero=vzero, vload=vload, vstore=vstore, vaddstore=vaddstore, vsfma=vsfma, sload=sload)
    python = _python_twins(lanes)
    ops = SimpleNamespace(lanes=lanes, type=vector_type, compiled=compiled, python=python, **vars(compiled))
    if numba.config.DISABLE_JIT:
        vars(ops).update(vars(python))
    elif BOUNDS_CHECKED:
        vars(ops).update(_checked(lanes, compiled))
    return ops


def _check_float32_array(array):
    if not (isinstance(array, types.Array) and array.dtype == types.float32):
        raise DTypeError(f"simd: expected a float32 array, got {array}")


# --- the other two builds: plain Python, and compiled with every access checked ----------------------------

def _python_twins(lanes):
    def lanes_of(array, index, op):
        """The ``lanes`` elements from flat ``index`` of ``array``'s memory, as a writable view; IndexError
        outside it."""
        if array.dtype != np.float32 or not array.flags.c_contiguous:
            raise DTypeError(f"simd.{op}: expected a C-contiguous float32 array, got {array.dtype}")
        flat = array.reshape(-1)
        if index < 0 or index + lanes > flat.size:
            raise IndexError(f"simd.{op}: lanes {index}..{index + lanes - 1} outside an array of {flat.size}")
        return flat[index:index + lanes]

    def vzero():
        return np.zeros(lanes, np.float32)

    def vload(array, index):
        return lanes_of(array, index, "vload").copy()

    def vstore(array, index, vector):
        lanes_of(array, index, "vstore")[...] = vector

    def vaddstore(array, index, vector):
        lanes_of(array, index, "vaddstore")[...] += vector

    def vsfma(scalar, vector, accumulator):
        return np.float32(scalar) * vector + accumulator  # two roundings where the FMA has one

    def sload(array, index):
        if array.dtype != np.float32 or not array.flags.c_contiguous:
            raise DTypeError(f"simd.sload: expected a C-contiguous float32 array, got {array.dtype}")
        if index < 0 or index >= array.size:
            raise IndexError(f"simd.sload: element {index} outside an array of {array.size}")
        return array.reshape(-1)[index]

    return SimpleNamespace(vzero=vzero, vload=vload, vstore=vstore, vaddstore=vaddstore, vsfma=vsfma, sload=sload)


def _checked(lanes, compiled):
    """vload, vstore, vaddstore that check the index first (compiled: numba inlines them into the kernels)."""
    compiled_vload, compiled_vstore, compiled_vaddstore = compiled.vload, compiled.vstore, compiled.vaddstore
    compiled_sload = compiled.sload

    @numba.njit
    def check(array, index):
        if index < 0 or index + lanes > array.size:
            raise IndexError("simd: a vector access reaches outside its array (NUMBA_BOUNDSCHECK=1)")

    @numba.njit
    def vload(array, index):
        check(array, index)
        return compiled_vload(array, index)

    @numba.njit
    def vstore(array, index, vector):
        check(array, index)
        compiled_vstore(array, index, vector)

    @numba.njit
    def vaddstore(array, index, vector):
        check(array, index)
        compiled_vaddstore(array, index, vector)

    @numba.njit
    def sload(array, index):
        if index < 0 or index >= array.size:
            raise IndexError("simd: a scalar access reaches outside its array (NUMBA_BOUNDSCHECK=1)")
        return compiled_sload(array, index)

    return {"vload": vload, "vstore": vstore, "vaddstore": vaddstore, "sload": sload}


_default = vector_ops(LANES)
vzero, vload, vstore, vaddstore = _default.vzero, _default.vload, _default.vstore, _default.vaddstore
vsfma, sload = _default.vsfma, _default.sload
float32_vector = _default.type
