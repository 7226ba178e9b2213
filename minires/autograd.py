"""The autograd engine: backward through the graph that Functions record as they run forward.

Every tensor that needs a gradient owns a Node: the Function that made it (None for a leaf), its hooks, and a
weak reference back to the tensor for its .grad. Functions link nodes, never tensors, so the graph holds no
array except those a Function saved for its backward.

    run_backward(root, grad):
        order the nodes so that each comes after all of its inputs (topological order)
        walk that order in reverse, from the root:
            grad = the sum of what this node received, passed through its hooks
            a leaf (or a node that retains its grad): add grad to .grad
            otherwise: hand grad to the creator's backward, which returns one gradient per input,
                       and add each to what that input has received so far (+=)

The sum is what makes a residual network's backward correct: x feeds both F(x) and the shortcut, so two
gradients arrive at x's node and dL/dx = dL/dy (dF/dx + I). Before a Function's backward runs, the version
counters of the tensors it saved are checked (minires/inplace.py): an in-place change since forward is an
error, never a silently wrong gradient.

torch.autograd's names live here too: ``grad(outputs, inputs)`` returns gradients instead of adding them to
.grad, ``backward(tensors, grad_tensors)`` and ``Variable`` (torch's deprecated alias: it returns a Tensor).
"""
import weakref

from . import backend, inplace, op_hooks
from .errors import AutogradError, DTypeError, ShapeError


def run_backward(root, grad, wrap, retain_graph, capture=None):
    """Add d(root)/d(leaf) to the .grad of every leaf on the way to node ``root``; ``grad`` is dL/d(root) as
    an array, ``wrap`` makes a Tensor of an array for the hooks. The graph's saved arrays are freed on the way
    unless ``retain_graph``. With ``capture`` (a dict keyed by node id), no .grad changes: the gradient that
    reaches each of those nodes is put in the dict instead (that is ``grad`` below)."""
    grads = {id(root): Received(grad, owned=False)}  # node -> the gradient it has received so far
    for node in reversed(topological_order(root)):
        received = grads.pop(id(node), None)
        grad = node.run_hooks(None if received is None else received.grad, wrap)
        if grad is None:
            continue
        if capture is not None:
            if id(node) in capture:
                capture[id(node)] = grad
        elif node.creator is None or node.retains_grad:
            node.store_grad(grad, owned=node.creator is None and received.owned and grad is received.grad)
        fn = node.creator
        if fn is not None:
            for parent, parent_grad in zip(fn.inputs, input_grads(fn, grad)):
                if parent is not None and parent_grad is not None:
                    check_gradient(fn.op_name(), parent, parent_grad)
                    grads[id(parent)] = received_sum(grads.get(id(parent)), parent_grad, fn)  # +=
            if not retain_graph:
                fn.release()


def topological_order(root):
    """Every node that needs a gradient on the way to ``root``, each after all of its inputs (iterative, so a
    graph thousands of nodes deep needs no recursion)."""
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


def input_grads(fn, grad):
    """fn's backward: one gradient (or None) per input of fn."""
    if fn.released:
        raise AutogradError(f"backward through {fn.op_name()} a second time: its saved arrays were "
                            f"freed by the first backward; pass retain_graph=True to the first call")
    inplace.check_saved_versions(fn)
    result = op_hooks.run(fn, "backward", (grad,), lambda: fn.backward(grad))
    return result if isinstance(result, tuple) else (result,)


class Received:
    """A node's gradient so far, and whether that array is the engine's alone (an optimisation, see below)."""
    __slots__ = ("grad", "owned")

    def __init__(self, grad, owned):
        self.grad, self.owned = grad, owned


def received_sum(previous, grad, fn):
    """previous + grad. The one optimisation in the engine: a leaf keeps a copy of the gradient it receives
    (the same array may be handed to other inputs too), unless the engine knows nobody else holds it — a sum
    it made itself, or a Function whose backward makes a fresh array per input (``fresh_input_grads``, as
    torch's AccumulateGrad steals a gradient no one else holds). Then .grad takes the array without a copy."""
    if previous is None:
        return Received(grad, owned=fn.fresh_input_grads)
    return Received(previous.grad + grad, owned=True)


def check_gradient(op, tensor, grad):
    """A gradient must match its tensor exactly: never let a mis-shaped one broadcast into a parameter."""
    if grad.shape != tensor.shape:
        raise ShapeError(f"{op}: gradient of shape {tuple(grad.shape)} does not match the tensor's shape "
                         f"{tuple(tensor.shape)}")
    if grad.dtype != tensor.dtype:
        raise DTypeError(f"{op}: gradient of dtype {grad.dtype} does not match the tensor's dtype {tensor.dtype}")


class Node:
    """A tensor's place in the graph. It holds no array: only the Function that made the tensor, what
    backward checks (shape, dtype), hooks, and a weak reference back to the tensor for .grad."""
    __slots__ = ("creator", "_shape", "_dtype", "hooks", "post_accumulate_hooks", "retains_grad", "_tensor")

    def __init__(self, tensor, creator):
        self.creator, self.hooks, self.post_accumulate_hooks, self.retains_grad = creator, (), (), False
        self._shape, self._dtype = tensor.array.shape, tensor.array.dtype
        self._tensor = weakref.ref(tensor)

    def tensor(self):
        return self._tensor()

    def store_grad(self, grad, owned):
        tensor = self._tensor()
        if tensor is not None:  # a tensor nobody holds any more cannot be asked for its .grad
            tensor._accumulate_grad(grad, owned)
            for hook in self.post_accumulate_hooks:
                hook(tensor)

    # A leaf's array may be replaced (Module.to, astype): ask the tensor; an op's output never changes.
    @property
    def shape(self):
        tensor = self._tensor() if self.creator is None else None
        return tensor.array.shape if tensor is not None else self._shape

    @property
    def dtype(self):
        tensor = self._tensor() if self.creator is None else None
        return tensor.array.dtype if tensor is not None else self._dtype

    def run_hooks(self, grad, wrap):
        """Each hook sees grad as a Tensor (``wrap(grad)``) and may return a replacement (Tensor or array)."""
        if grad is None:  # no gradient reached this node: nothing to show a hook
            return None
        for hook in self.hooks:
            shown = wrap(grad)
            replaced = hook(shown)
            if replaced is not None:
                replaced = replaced.array if isinstance(replaced, type(shown)) else replaced  # a Tensor or an array
                check_gradient("register_hook", self, replaced)
                grad = replaced
        return grad


class HookHandle:
    """What register_hook returns: ``handle.remove()`` takes the hook off again."""

    def __init__(self, node, hook, kind="hooks"):
        self._node, self._hook, self._kind = node, hook, kind

    def remove(self):
        setattr(self._node, self._kind, tuple(h for h in getattr(self._node, self._kind) if h is not self._hook))


# --- torch.autograd's names -----------------------------------------------------------------------------
def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """d(outputs)/d(inputs) as a tuple of Tensors, leaving every .grad as it is (torch.autograd.grad).
    Several outputs add up (each with its grad_outputs entry). minires has no double backward, so
    ``create_graph=True`` is refused rather than answered without a graph."""
    from .tensor import Tensor
    if create_graph or is_grads_batched:
        raise AutogradError("autograd.grad: minires does not implement create_graph=True (double backward) or "
                            "is_grads_batched=True yet")
    allow_unused = bool(allow_unused) or materialize_grads
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    grad_outputs = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise AutogradError(f"autograd.grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise AutogradError("autograd.grad: every input must be a Tensor that requires grad")
    total = [None] * len(inputs)
    for k, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise AutogradError("autograd.grad: an output does not require grad (no graph was built for it)")
        capture = {id(t._node): None for t in inputs}
        keep = bool(retain_graph) or k < len(outputs) - 1
        run_backward(out._node, out._initial_grad(g), Tensor._make, keep, capture)
        for i, t in enumerate(inputs):
            got = capture[id(t._node)]
            if got is not None:
                total[i] = got.copy() if total[i] is None else total[i] + got
    if not allow_unused and any(g is None for g in total):
        raise AutogradError("autograd.grad: one of the inputs was not used to compute the outputs; pass "
                            "allow_unused=True to get None for it")
    if materialize_grads:  # unused inputs get zeros instead of None
        total = [backend.get_array_module(t.array).zeros_like(t.array) if g is None else g
                 for g, t in zip(total, inputs)]
    return tuple(None if g is None else Tensor._make(g) for g in total)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None, inputs=None):
    """torch.autograd.backward: backward from each tensor with its gradient; the leaves' .grad get the sum."""
    if create_graph or inputs is not None:
        raise AutogradError("autograd.backward: minires does not implement create_graph= or inputs= yet")
    tensors = _as_tuple(tensors)
    grad_tensors = grad_tensors if grad_tensors is not None else grad_variables  # torch's old name
    grad_tensors = _as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(tensors)
    for k, (t, g) in enumerate(zip(tensors, grad_tensors)):
        t.backward(g, retain_graph=bool(retain_graph) or k < len(tensors) - 1)


def Variable(data, requires_grad=False, volatile=False):
    """torch's deprecated ``Variable``: since torch 0.4 it just returns a Tensor, and so does minires (the
    tensor itself when given one, with requires_grad set as asked)."""
    from .tensor import Tensor
    if isinstance(data, Tensor):
        if requires_grad and not data.requires_grad:
            data.requires_grad_(True)
        return data
    return Tensor(data, requires_grad=requires_grad)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)
