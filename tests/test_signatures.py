"""Where minires and torch share a name, they share its signature (DESIGN: "a test compares signatures").

For each shared function, class constructor and Tensor method, torch's parameters are read mechanically —
``inspect.signature``, or the signature line that opens the docstring of a builtin — and minires must take
the same positional parameters in the same order with the same names, accept every keyword-only one, and
use the same defaults. minires may add parameters of its own after torch's, keyword-only.
"""
import inspect
import keyword
import re

import pytest

import minires as mr

torch = pytest.importorskip("torch")

SKIP_TORCH_PARAMETERS = {"self", "out"}  # `out=` tensors: minires never writes into a given output


def torch_parameters(function):
    """[(name, kind, default)] of a torch callable; kind "positional" or "keyword"."""
    try:
        signature = inspect.signature(function)
        if any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values()) and function.__doc__:
            raise ValueError("dispatch wrapper: read the documented signature")
        result = []
        for p in signature.parameters.values():
            if p.name in SKIP_TORCH_PARAMETERS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            kind = "keyword" if p.kind == p.KEYWORD_ONLY else "positional"
            result.append((p.name, kind, p.default if p.default is not p.empty else inspect.Parameter.empty))
        return result
    except (ValueError, TypeError):
        return documented_parameters(function)


def documented_parameters(function):
    """Parse "name(a, b=1, *, c=None) -> T" from the first docstring line of a builtin."""
    lines = (function.__doc__ or "").strip().splitlines()
    match = re.match(r"[\w.]*\((.*?)\)\s*(->|$)", lines[0]) if lines else None
    if not match:
        return None
    result, kind = [], "positional"
    for part in [p.strip() for p in match.group(1).split(",") if p.strip()]:
        if part == "*":
            kind = "keyword"
            continue
        name, _, default = part.partition("=")
        name = name.split(":")[0].strip()
        if name in SKIP_TORCH_PARAMETERS or name.startswith("*"):
            continue
        if keyword.iskeyword(name):  # uniform_(from=0, ...): only passed by position, so only the place counts
            name = None
        try:
            value = eval(default, {"inf": float("inf"), "torch": torch}) if default else inspect.Parameter.empty
        except Exception:
            value = default
        result.append((name, kind, value))
    return result


def mismatches(ours, theirs):
    """What in minires' signature breaks a call written for torch's."""
    problems = []
    mine = [p for p in inspect.signature(ours).parameters.values() if p.name != "self"]
    positional = [p for p in mine if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    by_name = {p.name: p for p in mine}
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in mine)
    position = 0
    for name, kind, default in theirs:
        if kind == "positional":
            if position >= len(positional) or (name is not None and positional[position].name != name):
                got = positional[position].name if position < len(positional) else "nothing"
                problems.append(f"positional parameter {position} is {name!r} in torch, {got!r} in minires")
            position += 1
        elif name not in by_name and not takes_kwargs:
            problems.append(f"keyword {name!r} is not accepted")
        mine_param = by_name.get(name)
        if mine_param is not None and default is not inspect.Parameter.empty and \
                mine_param.default is not inspect.Parameter.empty and not same_default(mine_param.default, default):
            problems.append(f"{name}: default {mine_param.default!r} vs torch's {default!r}")
    extra = [p.name for p in positional[position:] if p.default is p.empty]
    if extra:
        problems.append(f"minires requires extra positional parameters {extra}")
    return problems


def same_default(a, b):
    if str(b) == "torch.strided":
        return a is None  # minires has one layout
    if inspect.ismodule(b):
        return a is None  # torch.save's pickle_module=pickle: minires never pickles
    if isinstance(b, torch.Generator):
        return a is None  # torch's default generator; minires' is its own default (None)
    if isinstance(b, (tuple, list)) and isinstance(a, (tuple, list)):
        return tuple(a) == tuple(b)
    if isinstance(b, str) and not isinstance(a, str):
        return b in (repr(a), str(a)) or (b == "None" and a is None)
    try:
        return a == b or (a is None and b is None)
    except Exception:
        return False


def shared(ours_module, theirs_module, kind):
    names = sorted(n for n in dir(ours_module) if not n.startswith("_") and hasattr(theirs_module, n))
    pairs = []
    for name in names:
        ours, theirs = getattr(ours_module, name), getattr(theirs_module, name)
        if kind == "class" and inspect.isclass(ours) and inspect.isclass(theirs):
            pairs.append((name, ours.__init__, theirs.__init__ if theirs.__init__ is not object.__init__ else None))
        elif kind == "function" and callable(ours) and not inspect.isclass(ours) and not inspect.ismodule(ours):
            pairs.append((name, ours, theirs))
    return pairs


CASES = (
    [("F." + n, o, t) for n, o, t in shared(mr.nn.functional, torch.nn.functional, "function")]
    + [("nn." + n, o, t) for n, o, t in shared(mr.nn, torch.nn, "class")]
    + [("nn.init." + n, o, t) for n, o, t in shared(mr.nn.init, torch.nn.init, "function")]
    + [("optim." + n, o, t) for n, o, t in shared(mr.optim, torch.optim, "class")]
    + [("lr_scheduler." + n, o, t) for n, o, t in shared(mr.optim.lr_scheduler, torch.optim.lr_scheduler, "class")]
    + [("utils.data." + n, o, t) for n, o, t in shared(mr.utils.data, torch.utils.data, "class")]
    + [("utils.data." + n, o, t) for n, o, t in shared(mr.utils.data, torch.utils.data, "function")]
    + [("autograd." + n, o, t) for n, o, t in [("grad", mr.autograd.grad, torch.autograd.grad),
                                               ("backward", mr.autograd.backward, torch.autograd.backward)]]
    + [("nn.Module." + n, getattr(mr.nn.Module, n), getattr(torch.nn.Module, n))
       for n in ("state_dict", "load_state_dict", "named_parameters", "parameters", "buffers", "named_buffers",
                 "zero_grad", "train", "requires_grad_", "apply", "register_forward_hook", "add_module")]
    + [("Tensor." + n, getattr(mr.Tensor, n), getattr(torch.Tensor, n))
       for n in ("max", "min", "sum", "mean", "argmax", "argmin", "sort", "topk", "add_", "sub_", "mul_", "div_",
                 "clamp", "clamp_", "expand_as", "view_as", "type_as", "unsqueeze", "squeeze", "softmax",
                 "log_softmax", "register_hook", "backward", "flatten", "copy_", "fill_", "normal_",
                 "uniform_", "requires_grad_", "detach", "size", "eq", "ne", "t", "numel", "dim", "item")]
    + [(n, getattr(mr, n), getattr(torch, n)) for n in ("tensor", "zeros", "ones", "randn", "rand", "arange",
                                                       "cat", "stack", "from_numpy", "save", "load")]
)
@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[c[0] for c in CASES])
def test_a_shared_name_has_torch_s_signature(name, ours, theirs):
    if theirs is None:
        pytest.skip("torch's class takes no arguments")
    parameters = torch_parameters(theirs)
    if parameters is None:
        pytest.skip(f"torch documents no signature for {name}")
    problems = mismatches(ours, parameters)
    assert not problems, f"{name}: " + "; ".join(problems)


def test_the_comparison_can_fail():
    def wrong(x, weight, stride=2):
        pass

    assert mismatches(wrong, torch_parameters(torch.nn.functional.conv2d)) == [
        "positional parameter 0 is 'input' in torch, 'x' in minires",
        "positional parameter 2 is 'bias' in torch, 'stride' in minires",
        "positional parameter 3 is 'stride' in torch, 'nothing' in minires",
        "stride: default 2 vs torch's 1",
        "positional parameter 4 is 'padding' in torch, 'nothing' in minires",
        "positional parameter 5 is 'dilation' in torch, 'nothing' in minires",
        "positional parameter 6 is 'groups' in torch, 'nothing' in minires"]
