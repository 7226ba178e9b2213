"""Tensor: an array (NumPy or CuPy) with a gradient and a link to the Function that made it.

A tensor that needs a gradient owns a small graph node (autograd.Node): the Function that made it, its shape
and dtype, its hooks. Functions link nodes, never tensors, so an intermediate result nobody saved is freed
as soon as forward is done with it, as in PyTorch. ``Tensor.backward`` hands the walk to minires/autograd.py.
"""
import operator

import numpy as np

from . import autograd, backend
from . import memory_format as memory_format_rules
from .autograd import HookHandle, Node, check_gradient
from .errors import ArgumentError, ArgumentTypeError, AutogradError, DeviceError, DTypeError


NUMERIC_KINDS = "biuf"  # bool, int, unsigned, float: no strings, bytes, objects, dates or complex numbers


def as_array(data, dtype=None, device=None):
    """Convert user data to an array, PyTorch-style: Python floats become float32, NumPy/CuPy arrays keep
    their dtype (so float64 stays float64), Python ints become int64. Always a fresh copy."""
    if isinstance(data, Tensor):
        data = data.data
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


def tensor(data, requires_grad=False, dtype=None, device=None):
    """Make a Tensor from data (list, scalar, NumPy/CuPy array, Tensor); a copy, never a view."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


class Tensor:
    __slots__ = ("data", "_grad", "_node", "__weakref__")
    __array_ufunc__ = None  # NumPy defers to our reflected operators: ndarray + Tensor -> Tensor.__radd__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        self.data = as_array(data, dtype=dtype, device=device)
        self._grad = None
        self._node = None
        self.requires_grad = requires_grad

    @classmethod
    def _make(cls, data, requires_grad=False, creator=None):
        """Wrap an op's output array without copying (ops return NumPy scalars for full reductions)."""
        if isinstance(data, np.generic):
            data = np.asarray(data)
        t = cls.__new__(cls)
        t.data, t._grad, t._node = data, None, None
        if creator is not None or requires_grad:
            t._node = Node(t, creator)
        return t

    # --- properties -------------------------------------------------------------------------------
    @property
    def grad(self):
        """dL/d(this tensor) after backward, a Tensor without history (as in PyTorch), or None.
        ``.grad.data`` is the array. Leaves accumulate it across backward calls until it is set to None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            value = value if isinstance(value, Tensor) else Tensor._make(value)
            check_gradient(".grad", self, value.data)
        self._grad = value

    @property
    def requires_grad(self):
        return self._node is not None

    @requires_grad.setter
    def requires_grad(self, value):
        if self.grad_fn is not None:
            raise AutogradError("requires_grad can only be changed on leaf tensors; use .detach() for a "
                               "non-leaf tensor")
        if value and self.data.dtype.kind not in "fc":
            raise DTypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        if not value:
            self._node = None
        elif self._node is None:
            self._node = Node(self, None)

    def requires_grad_(self, value=True):
        self.requires_grad = value
        return self

    @property
    def grad_fn(self):
        """The Function that made this tensor (None for a leaf or a tensor outside any graph), as in PyTorch."""
        return None if self._node is None else self._node.creator

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self.grad_fn is None)

    def __len__(self):
        if self.ndim == 0:
            raise ArgumentTypeError("len() of a 0-d tensor")
        return len(self.data)

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
        if self.data.size != 1:
            raise ArgumentError(f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                                f"use (t > 0).all() style reductions on .numpy()")
        return bool(self.item())

    def __format__(self, spec):
        return format(self.item(), spec) if spec and self.data.size == 1 else format(repr(self), spec)

    # Comparisons give boolean tensors outside any graph (they have no gradient), as in PyTorch.
    def _compare(self, other, compare):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(compare(self.data, other))

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
        values = np.array2string(backend.to_numpy(self.data), separator=", ", prefix="tensor(")
        dtype = f", dtype={self.dtype}" if self.dtype != np.float32 else ""
        device = f", device='{self.device}'" if self.device != "cpu" else ""
        if self.grad_fn is not None:
            grad = f", grad_fn=<{self.grad_fn.display_name()}>"
        else:
            grad = ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({values}{dtype}{device}{grad})"

    # --- leaving the graph ------------------------------------------------------------------------
    def numpy(self):
        """A host (NumPy) copy of the values."""
        return np.array(backend.to_numpy(self.data), copy=True)

    def __array__(self, dtype=None, copy=None):
        array = backend.to_numpy(self.data)
        return array if dtype is None else array.astype(dtype)

    def item(self):
        if self.data.size != 1:
            raise ArgumentError(f"item(): only a one-element tensor converts to a Python number, "
                             f"this one has shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def detach(self):
        """The same values (shared, not copied) with no history and no gradient."""
        return Tensor._make(self.data)

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

    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor: every leaf that requires grad gets d(self)/d(leaf) added to .grad.

        ``grad`` is the upstream gradient (array, Tensor or number); it may be left out only for a tensor of
        one element. The graph is freed afterwards unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise AutogradError("backward: this tensor does not require grad, so no graph was built for it "
                               "(did the inputs have requires_grad=True, outside no_grad()?)")
        autograd.backward(self._node, self._initial_grad(grad), Tensor._make, retain_graph)

    def _initial_grad(self, grad):
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise AutogradError(f"backward: grad must be given for a non-scalar output (shape {self.shape})")
            return xp.ones_like(self.data)
        if isinstance(grad, Tensor):
            grad = grad.data
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
            check_gradient("accumulate .grad", self, self._grad.data)
            self._grad = Tensor._make(self._grad.data + grad)

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

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return F.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def norm(self):
        """The L2 norm of all elements, sqrt(sum(x^2)), as a differentiable 0-d tensor."""
        return F.sqrt(F.sum(self * self))

    def reshape(self, *shape):
        return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    view = reshape  # minires has no strided views: a view is a reshape that shares the gradient path

    def size(self, dim=None):
        """The shape (PyTorch's name), or the size of one axis."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return self.data.size

    def dim(self):
        return self.data.ndim

    @property
    def mT(self):
        """The last two axes swapped (matrix transpose, batched)."""
        axes = list(range(self.ndim))
        axes[-2:] = axes[:-3:-1]
        return F.transpose(self, tuple(axes))

    def transpose(self, *axes):
        return F.transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes)

    @property
    def T(self):
        return F.transpose(self)

    def flatten(self, start_dim=1, end_dim=-1):
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

    def to(self, device=None, *, memory_format=None):
        """On ``device`` and/or in ``memory_format`` (mr.channels_last or mr.contiguous_format)."""
        moved = self if device is None else F.to_device(self, device)
        return moved if memory_format is None else F.contiguous(moved, memory_format)

    def contiguous(self, memory_format="contiguous_format"):
        """This tensor with its memory in ``memory_format`` (itself when it already is), as torch."""
        return F.contiguous(self, memory_format)

    def is_contiguous(self, memory_format="contiguous_format"):
        memory_format_rules.check(memory_format)
        return memory_format_rules.is_in_format(self.data, memory_format)

    def cpu(self):
        return self.to("cpu")


from . import functional as F  # noqa: E402  (functional imports Tensor, so it loads after the class)
