"""Tensor: an array (NumPy or CuPy) with a gradient and a link to the Function that made it.

``Tensor.array`` is the NumPy or CuPy array underneath (the name used throughout minires); ``.data`` is, as in
PyTorch, a Tensor sharing that memory without history, and ``.numpy()`` a host copy.

A tensor that needs a gradient owns a small graph node (autograd.Node): the Function that made it, its shape
and dtype, its hooks. Functions link nodes, never tensors, so an intermediate result nobody saved is freed
as soon as forward is done with it, as in PyTorch. ``Tensor.backward`` hands the walk to minires/autograd.py.
"""
import operator

import numpy as np

from . import autograd, backend, inplace
from . import memory_format as memory_format_rules
from .autograd import HookHandle, Node, check_gradient
from .errors import ArgumentError, ArgumentTypeError, AutogradError, DeviceError, DTypeError
from .rng import default_generator
from .dtypes import to_arguments
from .missing import missing
from .size import Size


NUMERIC_KINDS = "biuf"  # bool, int, unsigned, float: no strings, bytes, objects, dates or complex numbers


def as_array(data, dtype=None, device=None):
    """Convert user data to an array, PyTorch-style: Python floats become float32, NumPy/CuPy arrays keep
    their dtype (so float64 stays float64), Python ints become int64. Always a fresh copy."""
    if isinstance(data, Tensor):
        data = data.array
    if device is None:
        device = backend.device_of(data)
    xp = backend.xp_for(device)
    if dtype is None and not hasattr(data, "dtype"):
        array = np.asarray(data)
        dtype = np.float32 if array.dtype.kind == "f" else array.dtype
        data = array
    kind = np.dtype(dtype if dtype is not None else data.dtype).kind
    if kind not in NUMERIC_KINDS:
        raise DTypeError(f"tensor: data of dtype {np.dtype(dtype or data.dtype)} cannot be a tensor; minires "
                         f"holds booleans, integers and floats")
    if backend.device_of(data) != backend.normalize_device(device):
        data = backend.to_device(data, device)
    return xp.array(data, dtype=dtype, copy=True)


def tensor(data, requires_grad=False, dtype=None, device=None, *, pin_memory=False):
    """Make a Tensor from data (list, scalar, NumPy/CuPy array, Tensor); a copy, never a view."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


class Tensor:
    __slots__ = ("array", "_grad", "_node", "_version_counter", "__weakref__")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy meets a Tensor. Arithmetic and comparisons (ndarray + Tensor, ndarray < Tensor) are minires ops
        and give Tensors, in the graph; any other ufunc (np.isfinite(t), np.exp(t)) runs on the values and
        gives an array, as NumPy does with a torch tensor."""
        op = _UFUNC_OPERATORS.get(ufunc.__name__) if method == "__call__" and "out" not in kwargs else None
        if op is not None and len(inputs) == 2:
            return op(*(x.item() if isinstance(x, np.generic) else x for x in inputs))  # numpy scalar: a number
        arrays = [backend.to_numpy(x.array) if isinstance(x, Tensor) else x for x in inputs]
        return getattr(ufunc, method)(*arrays, **kwargs)

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        self.array = as_array(data, dtype=dtype, device=device)
        self._grad = None
        self._node = None
        self._version_counter = None
        self.requires_grad = requires_grad

    @classmethod
    def _make(cls, data, requires_grad=False, creator=None):
        """Wrap an op's output array without copying (ops return NumPy scalars for full reductions)."""
        if isinstance(data, np.generic):
            data = np.asarray(data)
        t = cls.__new__(cls)
        t.array, t._grad, t._node, t._version_counter = data, None, None, None
        if creator is not None or requires_grad:
            t._node = Node(t, creator)
        return t

    # --- properties -------------------------------------------------------------------------------
    @property
    def data(self):
        """This tensor's memory as a Tensor without history (PyTorch's ``.data``): changes made through it
        reach this tensor and are not tracked by autograd. ``.array`` is the NumPy/CuPy array itself."""
        return Tensor._make(self.array)

    @data.setter
    def data(self, value):
        """Replace the values (any shape, as torch allows), keeping this tensor's place in the graph."""
        self.array = value.array if isinstance(value, Tensor) else as_array(value, device=self.device)

    @property
    def _version(self):
        """How many in-place changes this tensor's memory has seen (torch's ``_version``)."""
        return 0 if self._version_counter is None else self._version_counter.value

    @property
    def grad(self):
        """dL/d(this tensor) after backward, a Tensor without history (as in PyTorch), or None.
        ``.grad.array`` is the array. Leaves accumulate it across backward calls until it is set to None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            value = value if isinstance(value, Tensor) else Tensor._make(value)
            check_gradient(".grad", self, value.array)
        self._grad = value

    @property
    def requires_grad(self):
        return self._node is not None

    @requires_grad.setter
    def requires_grad(self, value):
        if self.grad_fn is not None:
            raise AutogradError("requires_grad can only be changed on leaf tensors; use .detach() for a "
                               "non-leaf tensor")
        if value and self.array.dtype.kind not in "fc":
            raise DTypeError(f"only floating-point tensors can require gradients, got dtype {self.array.dtype}")
        if not value:
            self._node = None
        elif self._node is None:
            self._node = Node(self, None)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self):
        """The Function that made this tensor (None for a leaf or a tensor outside any graph), as in PyTorch."""
        return None if self._node is None else self._node.creator

    shape = property(lambda self: tuple.__new__(Size, self.array.shape))
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)
    device = property(lambda self: backend.device(backend.device_of(self.array)))
    is_cuda = property(lambda self: backend.device_of(self.array) == "cuda")
    is_leaf = property(lambda self: self.grad_fn is None)

    def __len__(self):
        if self.ndim == 0:
            raise ArgumentTypeError("len() of a 0-d tensor")
        return len(self.array)

    def __iter__(self):
        """The sub-tensors along the first axis (each still in the graph, as in PyTorch)."""
        if self.ndim == 0:
            raise ArgumentTypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise ArgumentError(f"the truth value of a tensor with {self.array.size} elements is ambiguous; "
                                f"use (t > 0).all() style reductions on .numpy()")
        return bool(self.item())

    def __format__(self, spec):
        return format(self.item(), spec) if spec and self.array.size == 1 else format(repr(self), spec)

    # Comparisons give boolean tensors outside any graph (they have no gradient), as in PyTorch.
    def _compare(self, other, compare):
        other = other.array if isinstance(other, Tensor) else other
        return Tensor._make(compare(self.array, other))

    def __eq__(self, other):
        return self._compare(other, operator.eq)

    def __ne__(self, other):
        return self._compare(other, operator.ne)

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    __hash__ = object.__hash__  # identity, as torch: tensors stay usable as dict keys and in sets

    def __repr__(self):
        values = np.array2string(backend.to_numpy(self.array), separator=", ", prefix="tensor(")
        dtype = f", dtype={self.dtype}" if self.dtype != np.float32 else ""
        device = f", device='{self.device}'" if self.device != "cpu" else ""
        if self.grad_fn is not None:
            grad = f", grad_fn=<{self.grad_fn.display_name()}>"
        else:
            grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({values}{dtype}{device}{grad})"

    def __getattr__(self, name):
        """Only reached for a name the class does not define: say it is a torch name minires lacks."""
        if hasattr(type(self), name):  # an AttributeError raised inside a property: do not mask it
            raise AttributeError(f"Tensor.{name} failed while it was computed")
        raise missing("torch.Tensor", name)

    # --- leaving the graph ------------------------------------------------------------------------
    def numpy(self):
        """A host (NumPy) copy of the values."""
        return np.array(backend.to_numpy(self.array), copy=True)

    def __array__(self, dtype=None, copy=None):
        array = backend.to_numpy(self.array)
        return array if dtype is None else array.astype(dtype)

    def item(self):
        if self.array.size != 1:
            raise ArgumentError(f"item(): only a one-element tensor converts to a Python number, "
                             f"this one has shape {self.shape}")
        return self.array.item()

    def tolist(self):
        return backend.to_numpy(self.array).tolist()

    def detach(self):
        """The same values (shared, not copied) with no history and no gradient; as in torch it shares the
        version counter, so an in-place change through it is still seen by backward (``.data`` does not)."""
        detached = Tensor._make(self.array)
        detached._version_counter = inplace.counter(self)
        return detached

    # --- backward ---------------------------------------------------------------------------------
    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward (leaves always keep theirs)."""
        if self._node is None:
            raise AutogradError("retain_grad: this tensor does not require grad")
        self._node.retains_grad = True

    def register_hook(self, hook):
        """Call hook(grad) when this tensor's gradient is complete; a returned Tensor or array replaces it."""
        if self._node is None:
            raise AutogradError("register_hook: cannot register a hook on a tensor that does not require grad")
        self._node.hooks = self._node.hooks + (hook,)
        return HookHandle(self._node, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(tensor) on a leaf each time backward has added to its .grad (torch's name and timing:
        data-parallel training starts a gradient bucket's allreduce from here)."""
        if self._node is None or self._node.creator is not None:
            raise AutogradError("register_post_accumulate_grad_hook: only a leaf that requires grad has a .grad "
                                "to accumulate")
        self._node.post_accumulate_hooks = self._node.post_accumulate_hooks + (hook,)
        return HookHandle(self._node, hook, "post_accumulate_hooks")

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Backpropagate from this tensor: every leaf that requires grad gets d(self)/d(leaf) added to .grad.

        ``gradient`` is the upstream gradient (array, Tensor or number); it may be left out only for a tensor of
        one element. The graph is freed afterwards unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise AutogradError("backward: this tensor does not require grad, so no graph was built for it "
                               "(did the inputs have requires_grad=True, outside no_grad()?)")
        if create_graph or inputs is not None:
            raise AutogradError("backward: minires does not implement create_graph= or inputs= yet")
        autograd.run_backward(self._node, self._initial_grad(gradient), Tensor._make, bool(retain_graph))

    def _initial_grad(self, grad):
        xp = backend.get_array_module(self.array)
        if grad is None:
            if self.array.size != 1:
                raise AutogradError(f"backward: grad must be given for a non-scalar output (shape {self.shape})")
            return xp.ones_like(self.array)
        if isinstance(grad, Tensor):
            grad = grad.array
        if isinstance(grad, (int, float)):
            return xp.full(self.shape, grad, dtype=self.dtype)
        if backend.device_of(grad) != self.device:
            raise DeviceError(f"backward: grad is on {backend.device_of(grad)} but the tensor is "
                                      f"on {self.device}")
        check_gradient("backward", self, grad)
        return grad

    def _accumulate_grad(self, grad, owned=False):
        if self._grad is None:
            # A copy (keeping the memory format): the same upstream array may also be handed to other tensors;
            # unless the engine says the array is its alone (Function.fresh_input_grads, or a sum it made).
            self._grad = Tensor._make(grad if owned else grad.copy(order="K"))
        else:
            check_gradient("accumulate .grad", self, self._grad.array)
            self._grad = Tensor._make(self._grad.array + grad)

    # --- operators (the math is in minires.functional) --------------------------------------------
    def __add__(self, other):
        return F.add(self, other)

    def __radd__(self, other):
        return F.add(other, self)

    def __sub__(self, other):
        return F.sub(self, other)

    def __rsub__(self, other):
        return F.sub(other, self)

    def __mul__(self, other):
        return F.mul(self, other)

    def __rmul__(self, other):
        return F.mul(other, self)

    def __truediv__(self, other):
        return F.div(self, other)

    def __rtruediv__(self, other):
        return F.div(other, self)

    def __pow__(self, exponent):
        return F.pow(self, exponent)

    def __rpow__(self, base):
        return F.rpow(base, self)

    def __neg__(self):
        return F.neg(self)

    def __matmul__(self, other):
        return F.matmul(self, other)

    def __rmatmul__(self, other):
        return F.matmul(other, self)

    def __getitem__(self, index):
        return F.getitem(self, index)

    def sum(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None):
        return F.sum(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
        return F.mean(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return F.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return F.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim=None, keepdim=False):
        return F.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return F.argmin(self, dim, keepdim)

    def sort(self, dim=-1, descending=False, stable=False):
        return F.sort(self, dim, descending)

    def topk(self, k, dim=None, largest=True, sorted=True):
        return F.topk(self, k, dim, largest, sorted)

    def norm(self):
        """The L2 norm of all elements, sqrt(sum(x^2)), as a differentiable 0-d tensor."""
        return F.sqrt(F.sum(self * self))

    def reshape(self, *shape):
        return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    view = reshape  # minires has no strided views: a view is a reshape that shares the gradient path

    def size(self, dim=None):
        """The shape as a ``minires.Size`` (PyTorch's name), or the size of one axis."""
        return self.shape if dim is None else self.array.shape[dim]

    def numel(self):
        return self.array.size

    def dim(self):
        return self.array.ndim

    @property
    def mT(self):
        """The last two axes swapped (matrix transpose, batched)."""
        axes = list(range(self.ndim))
        axes[-2:] = axes[:-3:-1]
        return F.transpose(self, tuple(axes))

    def transpose(self, *axes):
        """torch's ``x.transpose(d0, d1)`` swaps two axes; a full permutation (or a tuple of one) permutes, as
        NumPy's ``transpose``; no axes reverses them."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if len(axes) == 2 and self.ndim != 2:
            return F.swapaxes(self, *axes)
        return F.transpose(self, axes)

    def permute(self, *dims):
        return F.transpose(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims)

    def t(self):
        """The transpose of a matrix (a 0-D or 1-D tensor is returned as it is), as torch's ``t()``."""
        if self.ndim > 2:
            raise ArgumentError(f"t() expects a tensor of at most 2 dimensions, this one has shape {self.shape}")
        return self if self.ndim < 2 else F.transpose(self)

    @property
    def T(self):
        return F.transpose(self)

    def flatten(self, start_dim=0, end_dim=-1):
        return F.flatten(self, start_dim=start_dim, end_dim=end_dim)

    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def sqrt(self):
        return F.sqrt(self)

    def relu(self):
        return F.relu(self)

    def sigmoid(self):
        return F.sigmoid(self)

    def tanh(self):
        return F.tanh(self)

    def astype(self, dtype):
        return F.astype(self, dtype)

    def float(self):
        return F.astype(self, np.float32)

    def double(self):
        return F.astype(self, np.float64)

    def to(self, *args, **kwargs):
        """This tensor on a device, in a dtype and/or a memory format, as torch: to("cuda"), to(mr.float64),
        to(device, dtype), to(other), to(memory_format=mr.channels_last). Itself when nothing changes."""
        device, dtype, memory_format = to_arguments("Tensor", args, dict(kwargs))
        moved = self if device is None else F.to_device(self, device)
        moved = moved if dtype is None else F.astype(moved, dtype)
        return moved if memory_format is None else F.contiguous(moved, memory_format)

    def contiguous(self, memory_format="contiguous_format"):
        """This tensor with its memory in ``memory_format`` (itself when it already is), as torch."""
        return F.contiguous(self, memory_format)

    def is_contiguous(self, memory_format="contiguous_format"):
        memory_format_rules.check(memory_format)
        return memory_format_rules.is_in_format(self.array, memory_format)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda")

    # --- torch's other Tensor methods a training script reaches for ---------------------------------
    def view_as(self, other):
        return self.reshape(other.shape)

    reshape_as = view_as

    def expand(self, *sizes):
        return F.expand(self, sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes)

    def expand_as(self, other):
        return F.expand(self, other.shape)

    def repeat(self, *sizes):
        return F.repeat(self, sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes)

    def squeeze(self, dim=None):
        return F.squeeze(self, dim)

    def unsqueeze(self, dim):
        return F.unsqueeze(self, dim)

    def clone(self):
        return F.clone(self)

    def abs(self):
        return F.abs(self)

    def clamp(self, min=None, max=None):
        return F.clamp(self, min, max)

    clip = clamp

    def pow(self, exponent):
        return F.pow(self, exponent)

    def softmax(self, dim):
        return F.softmax(self, dim=dim)

    def log_softmax(self, dim):
        return F.log_softmax(self, dim=dim)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def gt(self, other):
        return self > other

    def lt(self, other):
        return self < other

    def ge(self, other):
        return self >= other

    def le(self, other):
        return self <= other

    def all(self, dim=None):
        return Tensor._make(self.array.all(axis=dim))

    def any(self, dim=None):
        return Tensor._make(self.array.any(axis=dim))

    def long(self):
        return F.astype(self, np.int64)

    def int(self):
        return F.astype(self, np.int32)

    def bool(self):
        return F.astype(self, np.bool_)

    def type_as(self, tensor):
        return F.astype(self, tensor.dtype)

    def is_floating_point(self):
        return self.dtype.kind == "f"

    nbytes = property(lambda self: self.array.nbytes)

    def __deepcopy__(self, memo):
        """A copy of a leaf's values (and .grad), as torch's deepcopy; a result inside a graph cannot be copied."""
        if self.grad_fn is not None:
            raise AutogradError("deepcopy: only leaf tensors (no grad_fn) can be deep-copied, as in torch; "
                                "use .detach().clone()")
        copied = type(self).__new__(type(self))
        copied.array, copied._grad, copied._node, copied._version_counter = self.array.copy(order="K"), None, None, None
        if self.requires_grad:
            copied._node = Node(copied, None)
        if self._grad is not None:
            copied._grad = Tensor._make(self._grad.array.copy(order="K"))
        memo[id(self)] = copied
        return copied

    def element_size(self):
        return self.array.itemsize

    def new_zeros(self, *size):
        xp = backend.get_array_module(self.array)
        return Tensor._make(xp.zeros(size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size,
                                     dtype=self.dtype))

    def new_tensor(self, data):
        return Tensor(data, dtype=self.dtype, device=self.device)

    # --- in place (minires/inplace.py: version counters, history rebased as in torch) ------------------
    def add_(self, other, alpha=1):
        return inplace.run(self, "add_", lambda t: t + (other if alpha == 1 else other * alpha))

    def sub_(self, other, alpha=1):
        return inplace.run(self, "sub_", lambda t: t - (other if alpha == 1 else other * alpha))

    def mul_(self, value):
        return inplace.run(self, "mul_", lambda t: t * value)

    def div_(self, value, *, rounding_mode=None):
        if rounding_mode is not None:
            raise ArgumentError(f"div_: minires does not implement rounding_mode={rounding_mode!r} yet")
        return inplace.run(self, "div_", lambda t: t / value)

    def pow_(self, exponent):
        return inplace.run(self, "pow_", lambda t: t ** exponent)

    def neg_(self):
        return inplace.run(self, "neg_", lambda t: -t)

    def relu_(self):
        return inplace.run(self, "relu_", F.relu)

    def clamp_(self, min=None, max=None):
        return inplace.run(self, "clamp_", lambda t: F.clamp(t, min, max))

    clip_ = clamp_

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def copy_(self, src, non_blocking=False):
        """Copy ``src``'s values (broadcast to this shape) into this tensor, in place."""
        return inplace.run(self, "copy_", lambda t: F.copy_into(t, src))

    def __setitem__(self, index, value):
        inplace.run(self, "__setitem__", lambda t: F.index_put(t, index, value))

    def zero_(self):
        return self._overwrite("zero_", lambda xp: xp.zeros(self.shape, dtype=self.dtype))

    def fill_(self, value):
        return self._overwrite("fill_", lambda xp: xp.full(self.shape, value, dtype=self.dtype))

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """Fill with N(mean, std^2) draws from the default generator (``mr.manual_seed``) or ``generator``."""
        rng = generator or default_generator()
        return self._overwrite("normal_", lambda xp: rng.normal(mean, std, self.shape))

    def uniform_(self, from_=0.0, to=1.0, *, generator=None):
        """Fill with U(from, to) draws (torch's uniform_(from, to); ``from`` is a Python keyword)."""
        rng = generator or default_generator()
        return self._overwrite("uniform_", lambda xp: rng.uniform(from_, to, self.shape))

    def _overwrite(self, op, make):
        """Replace every value (the old ones are not needed: no gradient flows into the new ones)."""
        inplace.refuse_a_recorded_leaf(self, op)
        values = make(backend.get_array_module(self.array))
        inplace.write(self, backend.to_device(values, self.device), op)
        if self.grad_fn is not None:
            self._node = None  # the values no longer depend on anything: the tensor leaves the graph
        return self


def _compared(compare):
    def apply(a, b):
        values = [x.array if isinstance(x, Tensor) else x for x in (a, b)]
        return Tensor._make(compare(*values))  # a comparison has no gradient
    return apply


_UFUNC_OPERATORS = {  # the ufuncs behind ndarray's operators, as minires ops (at least one side is a Tensor)
    "add": lambda a, b: F.add(a, b), "subtract": lambda a, b: F.sub(a, b), "multiply": lambda a, b: F.mul(a, b),
    "true_divide": lambda a, b: F.div(a, b), "divide": lambda a, b: F.div(a, b),
    "power": lambda a, b: F.pow(a, b) if isinstance(a, Tensor) else F.rpow(a, b),
    "matmul": lambda a, b: F.matmul(a, b), "equal": _compared(operator.eq), "not_equal": _compared(operator.ne),
    "less": _compared(operator.lt), "less_equal": _compared(operator.le), "greater": _compared(operator.gt),
    "greater_equal": _compared(operator.ge)}

from . import functional as F  # noqa: E402  (functional imports Tensor, so it loads after the class)
