"""Module backward hooks as PyTorch's ``register_full_backward_hook`` defines them:
``hook(module, grad_input, grad_output)`` runs once the gradients with respect to the module's tensor inputs
are computed; ``grad_input`` and ``grad_output`` are tuples of Tensors (None for an input that needs no
gradient). A returned tuple replaces ``grad_input`` (supported for modules with one tensor input).

How: an identity node is put on each tensor input before forward and on the output after it. The output's
identity sees dL/d(output) first and keeps it; each input's identity then sees dL/d(input) and, when the
last of them has arrived, calls the hooks. No module or op is changed.
"""
from ..errors import AutogradError
from ..function import Function
from ..tensor import Tensor


class _Identity(Function):
    name = "backward_hook"

    def forward(self, x, on_grad):
        self.on_grad = on_grad
        return x

    def backward(self, g):
        replaced = self.on_grad(g)
        return g if replaced is None else replaced


class BackwardHookCall:
    """One call of a module with backward hooks: wraps its inputs and output, gathers their gradients."""

    def __init__(self, module, hooks):
        self.module, self.hooks = module, hooks
        self.grad_output, self.grad_input, self.waiting = None, [], 0

    def wrap_inputs(self, args):
        self.grad_input = [None] * len(args)
        wrapped = list(args)
        for i, arg in enumerate(args):
            if isinstance(arg, Tensor) and arg.requires_grad:
                self.waiting += 1
                wrapped[i] = _Identity.apply(arg, on_grad=lambda g, i=i: self._input_grad(i, g))
        return tuple(wrapped)

    def wrap_output(self, output):
        if not isinstance(output, Tensor) or not output.requires_grad:
            return output
        return _Identity.apply(output, on_grad=self._output_grad)

    def _output_grad(self, g):
        self.grad_output = (Tensor._make(g),)
        if self.waiting == 0:  # no input needs a gradient: torch calls the hooks with grad_input all None
            self._call_hooks()

    def _input_grad(self, i, g):
        self.grad_input[i] = Tensor._make(g)
        self.waiting -= 1
        if self.waiting == 0:
            replaced = self._call_hooks()
            if replaced is not None:
                return replaced[i].array if isinstance(replaced[i], Tensor) else replaced[i]
        return None

    def _call_hooks(self):
        grad_input, replaced = tuple(self.grad_input), None
        for hook in self.hooks:
            result = hook(self.module, grad_input, self.grad_output)
            if result is not None:
                if sum(g is not None for g in self.grad_input) > 1:
                    raise AutogradError(f"{type(self.module).__name__}: a full backward hook may replace "
                                        f"grad_input only for a module with one tensor input")
                grad_input = replaced = tuple(result)
        return replaced
