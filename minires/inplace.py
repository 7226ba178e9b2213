"""In-place operations (``x.add_(y)``, ``x += y``, ``x.zero_()``) and PyTorch's version counters.

A Function keeps arrays for its backward (``save_for_backward``). If one of them is changed in place later,
backward would compute a wrong gradient without a word. So, as in PyTorch, every tensor has a version
counter that each in-place change increments; when a Function saves the array of one of its inputs or of its
output, it notes that tensor's counter and version, and backward refuses to run if the version moved on:

    y = x.exp()        # exp saves y for its backward (d exp(x) = exp(x))
    y.add_(1)          # y's version 0 -> 1
    y.sum().backward() # AutogradError: exp saved a tensor that add_ changed in place (version 1, expected 0)

An in-place op on a tensor in the graph computes the op as usual (a new node whose input is the tensor's old
node), writes the result into the tensor's memory and makes the tensor the output of that node (torch "rebases"
its history the same way). A leaf that requires grad cannot be changed in place while gradients are
recorded (its .grad would describe values it no longer holds), exactly as in torch; ``with no_grad():`` or
``.data`` is the way, as there.
"""
import weakref

from . import backend
from .errors import ArgumentError, AutogradError, DTypeError, ShapeError
from .grad_mode import is_grad_enabled


class VersionCounter:
    """How many times a tensor's memory was changed in place, and by which op last. Shared by tensors that
    share memory the way torch shares it: ``detach()`` and views made by ops; ``.data`` gets its own, so changes
    through ``.data`` are not tracked (torch's documented escape hatch)."""
    __slots__ = ("value", "last_op")

    def __init__(self):
        self.value, self.last_op = 0, None


def counter(tensor):
    if tensor._version_counter is None:
        tensor._version_counter = VersionCounter()
    return tensor._version_counter


def note_saved_versions(fn, tensors):
    """Remember the version of every tensor among ``tensors`` whose memory ``fn`` saved for backward (the
    array itself, a view of it, or one inside a kernel's saved state)."""
    saved = {id(memory_of(a)) for a in saved_arrays(fn.saved_tensors)}
    if not saved:
        return
    noted = []
    for t in tensors:
        if t is not None and id(memory_of(t.array)) in saved:
            c = counter(t)
            noted.append((c, c.value))
    fn.saved_versions = tuple(noted)


def memory_of(array):
    """The array that owns ``array``'s memory (NumPy and CuPy point every view's .base at it)."""
    base = getattr(array, "base", None)
    return array if base is None else base


def saved_arrays(items):
    """Every array in what a Function saved: arrays and tuples of them (a kernel's Saved record is a tuple
    whose state holds the arrays it keeps)."""
    for item in items:
        if item is None:
            continue
        if hasattr(item, "shape") and hasattr(item, "dtype"):
            yield item
        elif isinstance(item, (tuple, list)):
            yield from saved_arrays(item)


def check_saved_versions(fn):
    """Before fn's backward: every saved tensor still holds the values fn saw (raise otherwise, as torch)."""
    for c, version in getattr(fn, "saved_versions", ()):
        if c.value != version:
            raise AutogradError(
                f"one of the tensors {fn.op_name()} saved for backward was modified by an in-place operation "
                f"({c.last_op}): it is at version {c.value}, expected version {version}; the gradient would be "
                f"wrong. Use the out-of-place op (e.g. y = y + 1 instead of y += 1) or .clone() before changing it")


def share_counter(output, inputs):
    """An op's output that is a view of (or the same array as) an input's memory shares that input's
    counter, so an in-place change through the view is seen by whatever saved the input."""
    memory = memory_of(output.array)
    for t in inputs:
        if t is not None and memory_of(t.array) is memory:
            output._version_counter = counter(t)
            return


def run(tensor, op, compute):
    """Apply ``compute(tensor) -> Tensor`` in place on ``tensor``: same shape and dtype, the result written into
    its memory, its history rebased onto the op when gradients are recorded. Returns ``tensor``."""
    recording = is_grad_enabled()
    refuse_a_recorded_leaf(tensor, op)
    result = compute(tensor)
    if tuple(result.shape) != tuple(tensor.shape):
        raise ShapeError(f"{op}: the result has shape {tuple(result.shape)} but the tensor changed in place has "
                         f"shape {tuple(tensor.shape)}; an in-place op cannot change a tensor's shape")
    fn = result.grad_fn if recording else None
    if fn is not None and any(a is tensor.array for a in fn.saved_tensors if a is not None):
        # the op saved the value we are about to overwrite (mul_ saves its inputs): keep a copy for it
        fn.saved_tensors = tuple(a.copy() if a is tensor.array else a for a in fn.saved_tensors)
        fn.saved_versions = tuple(v for v in getattr(fn, "saved_versions", ()) if v[0] is not tensor._version_counter)
    write(tensor, result.array, op)
    if fn is not None:
        node = result._node  # the tensor is now the op's output (torch rebases history the same way)
        node._tensor = weakref.ref(tensor)
        tensor._node = node
    elif recording and tensor.grad_fn is not None:
        tensor._node = None  # the new values depend on nothing that needs a gradient (copy_ of a constant)
    return tensor


def refuse_a_recorded_leaf(tensor, op):
    """torch's rule: a leaf that requires grad changes in place only while gradients are not recorded."""
    if is_grad_enabled() and tensor.requires_grad and tensor.grad_fn is None:
        raise AutogradError(f"{op}: a leaf tensor that requires grad cannot be changed in place while gradients "
                            f"are recorded (its .grad would not match its values); do it under "
                            f"`with minires.no_grad():` or on its .data, as in torch")


def write(tensor, values, op):
    """Copy ``values`` into ``tensor``'s memory (casting as torch allows) and count the change."""
    xp = backend.get_array_module(tensor.array)
    try:
        xp.copyto(tensor.array, values, casting="same_kind")
    except TypeError:
        raise DTypeError(f"{op}: a result of dtype {values.dtype} cannot be written in place into a tensor of "
                         f"dtype {tensor.dtype}") from None
    except ValueError as exc:
        raise ArgumentError(f"{op}: cannot write into this tensor in place ({exc}); an expanded tensor shares "
                            f"memory between elements: .clone() it first") from None
    c = counter(tensor)
    c.value += 1
    c.last_op = op
