"""Tensor: an array (NumPy or CuPy) with a gradient and a link to the Function that made it.

A tensor that needs a gradient owns a small graph node (``_Node``): the Function that made it, its shape and
dtype, its hooks. Functions link nodes, never tensors, so the graph holds no array except those a Function
saved for its backward: an intermediate result nobody saved is freed as soon as forward is done with it,
as in PyTorch.

The whole backward pass is ``Tensor.backward``: order the graph topologically (iteratively, so a graph
thousands of nodes deep needs no recursion), then walk it once in reverse, handing each node's gradient to
its creator's ``backward``.
"""
import operator
import weakref

import numpy as np

from . import backend, op_hooks
from . import memory_format as memory_format_rules
from .errors import ArgumentError, ArgumentTypeError, AutogradError, DeviceError, DTypeError, ShapeError


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
            t._node = _Node(t, creator)
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
            _check_gradient(".grad", self, value.data)
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
            self._node = _Node(self, None)

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
        return _HookHandle(self._node, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(tensor) on a leaf each time backward has added to its .grad (torch's name and timing:
        data-parallel training starts a gradient bucket's allreduce from here)."""
        if self._node is None or self._node.creator is not None:
            raise AutogradError("register_post_accumulate_grad_hook: only a leaf that requires grad has a .grad "
                                "to accumulate")
        self._node.post_accumulate_hooks = self._node.post_accumulate_hooks + (hook,)
        return _HookHandle(self._node, hook, "post_accumulate_hooks")

    def backward(self, grad=None, retain_graph=False):
        """Backpropagate from this tensor: every leaf that requires grad gets d(self)/d(leaf) added to .grad.

        ``grad`` is the upstream gradient (array, Tensor or number); it may be left out only for a tensor of
        one element. The graph is freed afterwards unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise AutogradError("backward: this tensor does not require grad, so no graph was built for it "
                               "(did the inputs have requires_grad=True, outside no_grad()?)")
        # node -> (dL/d(its tensor) summed so far, whether that array is the engine's alone to hand out)
        grads = {id(self._node): (self._initial_grad(grad), False)}
        for node in reversed(_topological_order(self._node)):
            summed, owned = grads.pop(id(node), (None, False))
            grad = node.run_hooks(summed)
            if grad is None:
                continue
            if node.creator is None or node.retains_grad:
                node.store_grad(grad, owned and grad is summed and node.creator is None)
            fn = node.creator
            if fn is not None:
                _accumulate(grads, fn, _input_grads(fn, grad))
                if not retain_graph:
                    fn.release()

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
        _check_gradient("backward", self, grad)
        return grad

    def _accumulate_grad(self, grad, owned=False):
        if self._grad is None:
            # A copy (keeping the memory format): the same upstream array may also be handed to other tensors;
            # unless the engine says the array is its alone (Function.fresh_input_grads, or a sum it made).
            self._grad = Tensor._make(grad if owned else grad.copy(order="K"))
        else:
            _check_gradient("accumulate .grad", self, self._grad.data)
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


class _Node:
    """A tensor's place in the graph. It holds no array: only the Function that made the tensor, what
    backward checks (shape, dtype), hooks, and a weak reference back to the tensor for .grad."""
    __slots__ = ("creator", "_shape", "_dtype", "hooks", "post_accumulate_hooks", "retains_grad", "_tensor",
                 "__weakref__")

    def __init__(self, tensor, creator):
        self.creator, self.hooks, self.post_accumulate_hooks, self.retains_grad = creator, (), (), False
        self._shape, self._dtype = tensor.data.shape, tensor.data.dtype
        self._tensor = weakref.ref(tensor)

    def tensor(self):
        return self._tensor()

    def store_grad(self, grad, owned=False):
        tensor = self._tensor()
        if tensor is not None:  # a tensor nobody holds any more cannot be asked for its .grad
            tensor._accumulate_grad(grad, owned)
            for hook in self.post_accumulate_hooks:
                hook(tensor)

    # A leaf's array may be replaced (Module.to, astype): ask the tensor; an op's output never changes.
    @property
    def shape(self):
        tensor = self._tensor() if self.creator is None else None
        return tensor.data.shape if tensor is not None else self._shape

    @property
    def dtype(self):
        tensor = self._tensor() if self.creator is None else None
        return tensor.data.dtype if tensor is not None else self._dtype

    def run_hooks(self, grad):
        for hook in self.hooks:
            if grad is None:
                break
            replaced = hook(Tensor._make(grad))
            if replaced is not None:
                replaced = replaced.data if isinstance(replaced, Tensor) else replaced
                _check_gradient("register_hook", self, replaced)
                grad = replaced
        return grad


class _HookHandle:
    def __init__(self, node, hook, kind="hooks"):
        self._node, self._hook, self._kind = node, hook, kind

    def remove(self):
        setattr(self._node, self._kind, tuple(h for h in getattr(self._node, self._kind) if h is not self._hook))


def _topological_order(root):
    """Every node that needs a gradient on the way to ``root``, each after all of its inputs."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node.creator is not None:
            for parent in node.creator.inputs:
                if parent is not None and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _input_grads(fn, grad):
    """fn's backward: one gradient (or None) per input of fn."""
    if fn.released:
        raise AutogradError(f"backward through {fn.op_name()} a second time: its saved arrays were "
                            f"freed by the first backward; pass retain_graph=True to the first call")
    input_grads = op_hooks.run(fn, "backward", (grad,), lambda: fn.backward(grad))
    return input_grads if isinstance(input_grads, tuple) else (input_grads,)


def _accumulate(grads, fn, input_grads):
    """Add each input's gradient to what the input already received from its other uses."""
    for parent, parent_grad in zip(fn.inputs, input_grads):
        if parent_grad is None or parent is None:
            continue
        _check_gradient(fn.op_name(), parent, parent_grad)
        # Gradients from every use of a tensor are summed (+=): this is what makes the residual fan-out
        # correct — x feeds both F(x) and the shortcut, so dL/dx = dL/dy (dF/dx + I).
        previous = grads.get(id(parent))
        grads[id(parent)] = (parent_grad, fn.fresh_input_grads) if previous is None else \
            (previous[0] + parent_grad, True)


def _check_gradient(op, tensor, grad):
    """A gradient must match its tensor exactly: never let a mis-shaped one broadcast into a parameter."""
    if grad.shape != tensor.shape:
        raise ShapeError(f"{op}: gradient of shape {tuple(grad.shape)} does not match the tensor's shape "
                         f"{tuple(tensor.shape)}")
    if grad.dtype != tensor.dtype:
        raise DTypeError(f"{op}: gradient of dtype {grad.dtype} does not match the tensor's dtype {tensor.dtype}")


from . import functional as F  # noqa: E402  (functional imports Tensor, so it loads after the class)
