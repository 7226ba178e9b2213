"""Module and Parameter: the PyTorch-style container for parameters, buffers and sub-modules.

state_dict() keys follow PyTorch (and so torchvision): a module's own parameters, then its buffers, then
each child's keys under "child_name.", in registration order.
"""
import collections
import threading

import numpy as np

from .. import backend, kernels
from .. import memory_format as memory_format_rules
from ..dtypes import to_arguments
from ..missing import TORCH_MODULE_NAMES, missing
from ..errors import ArgumentTypeError, DeviceError, DTypeError, MiniresError, ShapeError, UnknownNameError
from ..tensor import Tensor
from .backward_hooks import BackwardHookCall


class Parameter(Tensor):
    """A Tensor that is a module's learnable weight: requires_grad by default, listed by parameters()."""
    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class StateDictError(MiniresError, KeyError):
    """load_state_dict found missing or unexpected keys or mismatched shapes; the message lists them all."""

    def __str__(self):
        return self.args[0]


_USER_ERRORS = (ShapeError, DTypeError, DeviceError)
_calls = threading.local()


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", collections.OrderedDict())
        object.__setattr__(self, "_buffers", collections.OrderedDict())
        object.__setattr__(self, "_modules", collections.OrderedDict())
        object.__setattr__(self, "_forward_hooks", collections.OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", collections.OrderedDict())
        object.__setattr__(self, "_backward_hooks", collections.OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration ---------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                 f"assigning {name!r}")
        if name in self._buffers and (value is None or isinstance(value, Tensor)) \
                and not isinstance(value, Parameter):
            self._buffers[name] = value  # re-assigning a buffer keeps it a buffer
            return
        target = self._parameters if isinstance(value, Parameter) else self._modules if isinstance(value, Module) \
            else None
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not target:
                registry.pop(name, None)
        if target is None:
            object.__setattr__(self, name, value)
        else:
            target[name] = value  # a replaced parameter or module keeps its place in the order, as in torch

    def __getattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        if name in TORCH_MODULE_NAMES:
            raise missing("torch.nn.Module", name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, value):
        """A non-learnable state array (e.g. BN running statistics), kept in state_dict(); None is allowed."""
        self.__dict__.pop(name, None)
        self._buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor(value)

    def add_module(self, name, module):
        self._modules[name] = module

    register_module = add_module

    def register_parameter(self, name, param):
        """Add a Parameter (or None) under ``name``, as torch."""
        if param is not None and not isinstance(param, Parameter):
            raise ArgumentTypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    # --- calling --------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        for hook in self._forward_pre_hooks.values():
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward_hooks = BackwardHookCall(self, list(self._backward_hooks.values())) if self._backward_hooks else None
        if backward_hooks is not None:
            args = backward_hooks.wrap_inputs(args)
        depth = getattr(_calls, "depth", 0)
        _calls.depth = depth + 1
        try:
            output = self.forward(*args, **kwargs)
        except _USER_ERRORS as error:
            # Remember which modules the error came through; the outermost call names the failing layer.
            chain = error.__dict__.setdefault("module_chain", [])
            chain.insert(0, self)
            if depth == 0:
                raise type(error)(f"{_describe(chain)}: {error}") from error
            raise
        finally:
            _calls.depth = depth
        for hook in self._forward_hooks.values():
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output if backward_hooks is None else backward_hooks.wrap_output(output)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """hook(module, inputs, output) runs after forward; a value it returns replaces the output."""
        if with_kwargs or always_call:
            raise ArgumentTypeError("register_forward_hook: minires does not implement with_kwargs= or always_call= yet")
        return _RemovableHandle.add(self._forward_hooks, hook, prepend)

    def register_forward_pre_hook(self, hook):
        """hook(module, inputs) runs before forward; a value it returns (a tuple, or one input) replaces the
        inputs."""
        return _RemovableHandle.add(self._forward_pre_hooks, hook)

    def register_full_backward_hook(self, hook):
        """hook(module, grad_input, grad_output) runs when the gradients of the module's inputs are computed,
        as in PyTorch (see nn/backward_hooks.py)."""
        return _RemovableHandle.add(self._backward_hooks, hook)

    # --- traversal ------------------------------------------------------------------------------
    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return (module for _, module in self.named_children())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        for module_name, module in (self.named_modules(prefix) if recurse else [(prefix, self)]):
            for name, param in module._parameters.items():
                if param is not None and (id(param) not in seen or not remove_duplicate):
                    seen.add(id(param))
                    yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse=True):
        return (param for _, param in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        for module_name, module in (self.named_modules(prefix) if recurse else [(prefix, self)]):
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self, recurse=True):
        return (buffer for _, buffer in self.named_buffers(recurse=recurse))

    def apply(self, fn):
        for module in self.modules():
            fn(module)
        return self

    # --- modes and state ------------------------------------------------------------------------
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad.array[...] = 0

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def cuda(self, device=None):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    def to(self, *args, **kwargs):
        """Move every parameter, gradient and buffer to ``device`` ('cpu' or 'cuda') in place (a one-value
        integer buffer, num_batches_tracked, stays in host memory: on a GPU its += 1 would be a launch per
        batch-norm per step, and reading it a wait); with
        ``memory_format`` (mr.channels_last), lay out every 4-D one in it too. As in torch, a convolution
        whose weight is channels-last gives channels-last outputs, so the whole network follows."""
        device, dtype, memory_format = to_arguments("Module", args, dict(kwargs))
        if dtype is not None:  # torch's model.to(torch.float64): floating parameters and buffers only
            self.astype(dtype)
        if memory_format is not None:
            memory_format_rules.check(memory_format)
        device = None if device is None else backend.normalize_device(device)
        for tensor in list(self.parameters()) + list(self.buffers()):
            if _host_bookkeeping(tensor.array):
                continue
            tensor.array = self._moved(tensor.array, device, memory_format)
            if tensor.grad is not None:
                tensor.grad = self._moved(tensor.grad.array, device, memory_format)
        return self

    @staticmethod
    def _moved(array, device, memory_format):
        if device is not None and backend.device_of(array) != device:
            array = backend.to_device(array, device)
            if memory_format is None and array.ndim == 4:  # a weight takes the layout its new device runs fast
                memory_format = kernels.conv2d_weight_format(array.dtype, device)
        if memory_format is not None and array.ndim == 4:
            array = memory_format_rules.to_format(array, memory_format)
        return array

    def astype(self, dtype):
        """Cast floating parameters and buffers in place (e.g. float64 for a whole-network gradcheck)."""
        dtype = np.dtype(dtype)
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.dtype.kind == "f":
                tensor.array = tensor.array.astype(dtype)
                tensor.grad = None
        for module in self.modules():  # lazy layers without parameters yet take the dtype when they make them
            if hasattr(module, "_lazy_dtype"):
                module._lazy_dtype = dtype
        return self

    def double(self):
        return self.astype(np.float64)

    def float(self):
        return self.astype(np.float32)

    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An ordered dict of every parameter and buffer with PyTorch's key names; as in torch, the values are
        Tensors without history that share memory with the model (``copy.deepcopy`` it to keep a snapshot;
        ``keep_vars=True`` gives the Parameters themselves)."""
        state = collections.OrderedDict() if destination is None else destination
        for module_name, module in self.named_modules():
            where = f"{prefix}{module_name}." if module_name else prefix
            for name, tensor in list(module._parameters.items()) + list(module._buffers.items()):
                if tensor is not None:
                    state[where + name] = tensor if keep_vars else tensor.detach()
        return state

    def load_state_dict(self, state_dict, strict=True, assign=False, *, allow_nonfinite=False):
        """Copy values into the existing arrays (keeping device and dtype). Every value is validated and
        converted first and nothing is assigned unless all succeed, so a failed load changes nothing; all
        problems are raised together. Refused: missing or unexpected keys (when ``strict``), shapes that
        differ, non-float values for float arrays (int, bool, complex), and, unless ``allow_nonfinite``, NaN or
        infinite values and negative running variances. Returns (missing_keys, unexpected_keys)."""
        own = collections.OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, tensor in list(module._parameters.items()) + list(module._buffers.items()):
                if tensor is not None:
                    own[prefix + name] = tensor
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems, converted = collections.defaultdict(list), {}
        for key, tensor in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = np.asarray(backend.to_numpy(value.array if isinstance(value, Tensor) else value))
            problem = _load_problem(key, value, tensor, allow_nonfinite)
            if problem:
                problems[problem[0]].append(problem[1])
            else:
                converted[key] = value.astype(tensor.dtype)
        if strict and missing:
            problems["missing keys"] = missing
        if strict and unexpected:
            problems["unexpected keys"] = unexpected
        if problems:
            raise StateDictError(f"load_state_dict into {type(self).__name__} failed: " +
                                 " | ".join(f"{kind}: {_first_few(items, ', ' if kind.endswith('keys') else '; ')}"
                                            for kind, items in problems.items()))
        for key, value in converted.items():  # all checked: now assign
            own[key].array[...] = backend.to_device(value, own[key].device)
        return missing, unexpected

    # --- printing -------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self._modules.items()]
        body = ("\n  " + "\n  ".join(lines) + "\n") if lines else ""
        return f"{type(self).__name__}({self.extra_repr()}{body})"


def _host_bookkeeping(array):
    """A one-value integer buffer (BatchNorm2d.num_batches_tracked): a counter the host keeps."""
    return array.ndim == 0 and array.dtype.kind in "iu"


def _first_few(items, separator, shown=12):
    """A list for one line of an error: the first ``shown`` items, then how many more."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return separator.join(items[:shown]) + more


def _load_problem(key, value, tensor, allow_nonfinite):
    """(kind, description) of why ``value`` cannot be loaded into ``tensor``, or None."""
    if tuple(value.shape) != tuple(tensor.shape):
        return "shape mismatches", f"{key}: checkpoint {tuple(value.shape)}, model {tuple(tensor.shape)}"
    if np.dtype(tensor.dtype).kind == "f" and value.dtype.kind != "f":
        return "wrong dtypes", f"{key}: checkpoint {value.dtype}, the model's float array needs a float"
    if np.dtype(tensor.dtype).kind in "iu" and value.dtype.kind not in "iu":
        return "wrong dtypes", f"{key}: checkpoint {value.dtype}, the model's counter needs an integer"
    if allow_nonfinite or value.dtype.kind != "f":
        return None
    if not np.isfinite(value).all():
        return "non-finite values", f"{key} ({int((~np.isfinite(value)).sum())} of {value.size})"
    if key.endswith("running_var") and (value < 0).any():
        return "negative running variances", key
    return None


class _RemovableHandle:
    def __init__(self, registry, key):
        self._registry, self._key = registry, key

    @classmethod
    def add(cls, registry, hook, prepend=False):
        key = object()
        registry[key] = hook
        if prepend:
            registry.move_to_end(key, last=False)
        return cls(registry, key)

    def remove(self):
        self._registry.pop(self._key, None)


def _describe(chain):
    """'layer2.0.conv1 (Conv2d)' for the chain of modules an error passed through, root first."""
    names = []
    for parent, child in zip(chain, chain[1:]):
        names.append(next((n for n, m in parent._modules.items() if m is child), type(child).__name__))
    where = ".".join(names) if names else "the model"
    return f"{where} ({type(chain[-1]).__name__})"


def functional_call(module, parameters, *args, **kwargs):
    """``module(*args, **kwargs)`` with some parameters replaced for this one call (torch.func.functional_call).

    ``parameters`` maps names from ``named_parameters()`` to Tensors; afterwards the module holds its own
    parameters again, whatever happened. gradcheck_module runs a model on its float64 leaves this way.
    """
    modules = dict(module.named_modules())
    replaced = []  # (owner, name, its own parameter)
    try:
        for key, tensor in parameters.items():
            owner_name, _, name = key.rpartition(".")
            owner = modules.get(owner_name)
            if owner is None or name not in owner._parameters:
                raise UnknownNameError(f"functional_call: {type(module).__name__} has no parameter {key!r}")
            replaced.append((owner, name, owner._parameters[name]))
            owner._parameters[name] = tensor
        return module(*args, **kwargs)
    finally:
        for owner, name, own in reversed(replaced):
            owner._parameters[name] = own
