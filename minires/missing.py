"""The error for a PyTorch name that minires does not have: a program brought over from torch learns at once
which name is missing, instead of a bare AttributeError deep inside minires."""


def missing(namespace, name):
    """An AttributeError for ``torch.<namespace>.<name>`` (raise it from a module's or class's __getattr__)."""
    if name.startswith("__") and name.endswith("__"):
        return AttributeError(name)  # Python's own probes (__path__, __wrapped__, ...) get the plain error
    return AttributeError(f"minires does not implement {namespace}.{name} yet (minires mirrors the part of "
                          f"PyTorch that training residual networks uses; see docs/pytorch.md)")


# torch.nn.Module's public names: a missing attribute of a Module that is one of these is a torch feature
# minires lacks, anything else is the user's own name (and gets Python's usual message)
TORCH_MODULE_NAMES = frozenset((
    "add_module", "apply", "bfloat16", "buffers", "children", "compile", "cpu", "cuda", "double", "eval",
    "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half",
    "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules",
    "named_parameters", "parameters", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "type", "xpu",
    "zero_grad"))
