"""Function: one node of the autograd graph. The graph bookkeeping lives here; the math lives in the
subclasses under minires/functional/ (argument checks in their lowercase wrappers, kernels in kernels/).
Tools that watch every op (the profiler, parity) register an op hook (minires/op_hooks.py) instead of
patching this class.

A subclass implements

    forward(self, *arrays, **params) -> array
        gets the raw arrays (numpy or cupy) of its Tensor inputs (None stays None) and keyword parameters,
        keeps the arrays backward needs with ``save_for_backward`` and small values (shapes, flags, a
        window) as attributes, returns the output array;
    backward(self, grad_output) -> one gradient per Tensor input
        returns a tuple (or a single array for one input) with None where ``needs_input_grad`` is False.
        It must not modify ``grad_output`` in place: the same array may be handed on to several inputs.
"""
from . import op_hooks
from .backend import device_of
from .errors import ArgumentTypeError, DeviceError, DTypeError
from .grad_mode import is_grad_enabled
from .tensor import Tensor


class Function:
    name = None  # the op's public name, used in error messages ("conv2d", "add", ...)

    def __init__(self):
        self.inputs = ()
        self.needs_input_grad = ()
        self.saved_tensors = ()
        self.released = False

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays and, when any input needs a gradient, record this node."""
        for position, t in enumerate(inputs):
            if t is not None and not isinstance(t, Tensor):
                raise ArgumentTypeError(f"{cls.op_name()}: input {position + 1} is a {type(t).__module__}."
                                        f"{type(t).__name__}, not a Tensor; wrap it with mr.tensor(...)")
        arrays = tuple(None if t is None else t.data for t in inputs)
        _check_same_device_and_dtype(cls.op_name(), arrays)
        fn = cls()
        fn.needs_input_grad = tuple(t is not None and t._node is not None for t in inputs)
        record = is_grad_enabled() and any(fn.needs_input_grad)
        output = op_hooks.run(fn, "forward", arrays, lambda: fn.forward(*arrays, **params))
        if record:
            # The graph links the inputs' nodes, not the tensors: their arrays stay alive only if saved.
            fn.inputs = tuple(t._node if need else None for t, need in zip(inputs, fn.needs_input_grad))
            return Tensor._make(output, creator=fn)
        return Tensor._make(output)

    @classmethod
    def op_name(cls):
        return cls.name or cls.__name__.lower()

    def release(self):
        """Drop everything forward saved (the graph is freed after backward unless retain_graph=True)."""
        self.__dict__.clear()
        self.inputs, self.released = (), True


def _check_same_device_and_dtype(op, arrays):
    """Mixed devices or mixed dtypes are user errors: say so before any kernel runs."""
    first = None
    for array in arrays:
        if array is None:
            continue
        if first is None:
            first = array
            continue
        if type(array) is not type(first):
            raise DeviceError(f"{op}: inputs are on different devices: {device_of(first)} and "
                              f"{device_of(array)}; move them with .to(device) first")
        if array.dtype != first.dtype:
            raise DTypeError(f"{op}: inputs have different dtypes: {first.dtype} and {array.dtype}; "
                             f"minires never converts silently, use .astype() on one of them")
