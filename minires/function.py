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
from . import inplace, op_hooks
from .backend import device_of
from .errors import ArgumentTypeError, DeviceError, DTypeError
from .grad_mode import is_grad_enabled
from .tensor import Tensor


class Function:
    name = None  # the op's public name, used in error messages ("conv2d", "add", ...)
    # True where backward returns newly made arrays, a different one per input, that it keeps no reference
    # to: a leaf may then take one as its .grad without the copy it otherwise gets (as torch's AccumulateGrad
    # steals a gradient no one else holds). On a GPU that is a launch per parameter less.
    fresh_input_grads = False

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
        arrays = tuple(None if t is None else t.array for t in inputs)
        _check_same_device_and_dtype(cls.op_name(), arrays)
        fn = cls()
        fn.needs_input_grad = tuple(t is not None and t._node is not None for t in inputs)
        record = is_grad_enabled() and any(fn.needs_input_grad)
        output = op_hooks.run(fn, "forward", arrays, lambda: fn.forward(*arrays, **params))
        result = Tensor._make(output, creator=fn) if record else Tensor._make(output)
        inplace.share_counter(result, inputs)
        if record:
            # The graph links the inputs' nodes, not the tensors: their arrays stay alive only if saved.
            fn.inputs = tuple(t._node if need else None for t, need in zip(inputs, fn.needs_input_grad))
            inplace.note_saved_versions(fn, inputs + (result,))
        return result

    @classmethod
    def op_name(cls):
        return cls.name or cls.__name__.lower()

    @classmethod
    def display_name(cls):
        """PyTorch's style of naming a graph node: the op's class and "Backward" (ResidualAddBackward)."""
        return f"{cls.__name__}Backward"

    def __repr__(self):
        return f"<{self.display_name()}>"

    @property
    def next_functions(self):
        """((node, 0), ...) per input, as torch: the Function that made it, an AccumulateGrad for a leaf
        that requires grad, or None. Empty once backward has freed the graph."""
        return tuple((None if node is None else node.creator or AccumulateGrad(node), 0) for node in self.inputs)

    def release(self):
        """Drop everything forward saved (the graph is freed after backward unless retain_graph=True)."""
        self.__dict__.clear()
        self.inputs, self.released = (), True


class AccumulateGrad:
    """Where the gradient of a leaf tensor ends up (its .grad), as torch names that graph node."""

    def __init__(self, node):
        self._node = node

    @property
    def variable(self):
        return self._node.tensor()

    def __repr__(self):
        return "<AccumulateGrad>"


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
