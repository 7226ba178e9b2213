"""The one socket (kernels/__init__.py): every Function reaches its kernels through it by names grep finds, no
kernel module imports in a circle, the reference flavour is a readable path from Function to reference, and
the fused block falls back to the unfused one where a hook must see the join."""
import ast
import pathlib
import sys

import numpy as np
import pytest

import minires as mr
from minires import F, kernels, nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "kernels":
        parts = ["minires"] + parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules():
    paths = [*ROOT.glob("minires/**/*.py"), *KERNELS.glob("**/*.py")]
    return {_module_name(p): p for p in paths if "__pycache__" not in p.parts}


def _imports(name, path, modules):
    """Modules of the project that ``path`` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # ``from . import x``: the submodule x where there is one
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def test_no_kernel_module_imports_in_a_circle():
    """A family never imports its CUDA twin (the twin may import the family); the socket imports both."""
    modules = _project_modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items() if m.startswith("minires.kernels")}
    circles = []
    for start in graph:  # a depth-first walk from each module back to itself
        stack = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.append(path)
                elif nxt not in path and nxt in graph and len(path) < 6:
                    stack.append((nxt, path + (nxt,)))
    assert circles == []


def test_the_walk_finds_a_circle_when_there_is_one(tmp_path):
    """The import parser the test above relies on sees a function-level relative import."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from ..im2col import conv_out_size\n")
    modules = {"minires.kernels.cuda.x": path, "minires.kernels.im2col": path}
    assert _imports("minires.kernels.cuda.x", path, modules) == {"minires.kernels.im2col"}


def _calls_by_name(tree, names):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and
            getattr(n.func, "attr", getattr(n.func, "id", None)) in names]


def test_no_kernel_name_is_built_from_strings():
    """In the library and the benchmarks, a kernel looked up by name is looked up by a literal: grep finds it.
    (The tests' op tables hold the literals and loop over them.)"""
    built = []
    for path in [*ROOT.glob("minires/**/*.py"), *KERNELS.glob("**/*.py"), *ROOT.glob("benchmarks/*.py")]:
        for call in _calls_by_name(ast.parse(path.read_text()), {"pick", "implementation"}):
            if call.args and not isinstance(call.args[0], ast.Constant):
                built.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert built == []


def test_the_engine_calls_kernels_through_the_socket_only():
    """minires/ never looks a kernel up by name: it calls functions of kernels/__init__.py, each defined there."""
    socket = {n.name for n in ast.parse((KERNELS / "__init__.py").read_text()).body if isinstance(n, ast.FunctionDef)}
    lookups, unknown = [], []
    for path in ROOT.glob("minires/**/*.py"):
        tree = ast.parse(path.read_text())
        lookups += [f"{path.relative_to(ROOT)}:{c.lineno}" for c in _calls_by_name(tree, {"pick", "implementation"})]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "kernels" \
                    and isinstance(node.ctx, ast.Load) and node.attr not in socket and node.attr != "FLAVOURS":
                unknown.append(f"{path.relative_to(ROOT)}:{node.lineno} kernels.{node.attr}")
    assert lookups == [] and unknown == []


def test_every_family_kernel_is_in_the_table_with_its_twins():
    """Registration by convention: NAME_reference, NAME_numba and the CUDA twin's NAME, nothing by hand."""
    from minires.kernels import batchnorm, im2col, pool, residual, sgd
    from minires.kernels.cuda import batchnorm as cuda_batchnorm, im2col as cuda_im2col, pool as cuda_pool
    for family, twin in ((batchnorm, cuda_batchnorm), (im2col, cuda_im2col), (pool, cuda_pool), (residual, None),
                         (sgd, None)):
        for attribute, value in vars(family).items():
            if attribute.endswith("_reference") and not attribute.startswith("_"):
                name = attribute[:-len("_reference")]
                assert kernels.implementation(name, "reference") is value
                assert kernels.implementation(name, "numba") is getattr(family, name + "_numba", None)
                if twin is not None:
                    assert kernels.implementation(name, "cuda") is getattr(twin, name, None)
    assert len(kernels.registered()) >= 40


def _kernel_files_called(step):
    """The files under kernels/ whose functions run during ``step()``, under the reference flavour."""
    files, kernels_folder, resolved = set(), KERNELS.resolve(), {}

    def profile(frame, event, arg):
        if event == "call":
            name = frame.f_code.co_filename  # (resolved: the package may be reached through a link)
            path = resolved.setdefault(name, pathlib.Path(name).resolve())
            if kernels_folder in path.parents:
                files.add(str(path.relative_to(kernels_folder)))

    with kernels.using("reference"):
        sys.setprofile(profile)
        try:
            step()
        finally:
            sys.setprofile(None)
    return files


def _forward_backward(op, *shapes):
    rng = np.random.default_rng(0)
    inputs = [mr.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    y = op(*inputs)
    y.backward(rng.standard_normal(y.shape).astype(y.dtype))


@pytest.mark.parametrize("op, shapes, family", [
    (lambda x, w: F.conv2d(x, w, padding=1), [(2, 3, 5, 5), (4, 3, 3, 3)], "im2col.py"),
    (lambda x, w: F.conv2d(x.contiguous(memory_format=mr.channels_last).float(), w.float(), padding=1),
     [(2, 3, 5, 5), (4, 3, 3, 3)], "im2col.py"),
    (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), [(4, 3, 2, 2), (3,), (3,)], "batchnorm.py"),
    (lambda a, b: F.residual_add(a, b, relu=True), [(2, 3, 4, 4), (2, 3, 4, 4)], "residual.py"),
    (lambda x: F.max_pool2d(x, 2), [(2, 3, 4, 4)], "pool.py"),  # (and im2col.py's output-size formula)
])
def test_the_reference_flavour_runs_the_socket_and_one_family_file(op, shapes, family):
    """The learner's path: Function -> kernels/__init__.py -> the family's *_reference (no numba, no direct
    SIMD kernels, no column workspace), also for channels-last float32 input, which the numba flavour gives to
    the direct kernels."""
    expected = {"__init__.py", family} | ({"im2col.py"} if family == "pool.py" else set())
    assert _kernel_files_called(lambda: _forward_backward(op, *shapes)) == expected


def test_the_reference_flavour_steps_sgd_through_its_rule():
    w = mr.nn.Parameter(mr.tensor(np.ones((3, 3))))
    w.grad = mr.tensor(np.full((3, 3), 0.5))
    optimizer = mr.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01)
    assert _kernel_files_called(optimizer.step) == {"__init__.py", "sgd.py"}
    np.testing.assert_allclose(w.numpy(), 1 - 0.1 * (0.5 + 0.01))


def _block(fused):
    block = nn.BasicBlock(4, 4, shortcut="A", rng=np.random.default_rng(1), fused=fused)
    return block.to(memory_format=mr.channels_last)


def test_a_hook_on_the_join_sees_it_in_the_fused_block_too():
    """A fused block runs unfused while its join (or ReLU) has a hook: the hook fires, the values stay."""
    x = mr.tensor(np.random.default_rng(2).standard_normal((2, 4, 6, 6)).astype(np.float32), requires_grad=True)
    x = x.contiguous(memory_format=mr.channels_last)
    seen = []
    fused = _block(True)
    expected = _block(False)(x).numpy()
    handle = fused.join.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    y = fused(x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert seen == [(2, 4, 6, 6)] and type(y.grad_fn).__name__ == "ResidualAdd"
    handle.remove()
    y = fused(x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert type(y.grad_fn).__name__ == "BatchNormReLU"  # unhooked: the fused form again


def test_an_nchw_input_is_pulled_to_channels_last_only_where_the_direct_kernels_run():
    """conv2d_input_format: a float64 NCHW convolution (im2col) keeps its NCHW input and output, no conversion
    op (the float32 channels-last pull: tests/test_channels_last.py)."""
    rng = np.random.default_rng(3)
    x = mr.tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    w = mr.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert y.is_contiguous() and not y.is_contiguous(memory_format=mr.channels_last)
    assert [type(f).__name__ for f, _ in y.grad_fn.next_functions if f is not None] == ["AccumulateGrad"] * 2


def test_count_non_finite_takes_one_array_as_well():
    counts = kernels.count_non_finite([np.array([np.nan, 1.0, np.inf])])
    assert counts.tolist() == [2]


@pytest.mark.parametrize("dtype, flavour", [(np.float32, "numba"), (np.float64, "numba"), (np.float32, "reference")])
def test_a_channels_last_weight_makes_the_output_channels_last_on_every_path(dtype, flavour):
    """As in torch: y is channels-last when x or the weight is, whichever implementation runs (direct for
    float32 under numba, im2col otherwise); dx is laid out as x... or as y's gradient when x is pulled over,
    and dW as the weight."""
    if flavour == "numba" and not kernels.numba_available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(4)
    x = mr.tensor(rng.standard_normal((2, 16, 5, 5)).astype(dtype), requires_grad=True)
    w = mr.tensor(rng.standard_normal((8, 16, 3, 3)).astype(dtype)).contiguous(memory_format=mr.channels_last)
    w.requires_grad_()
    with kernels.using(flavour):
        y = F.conv2d(x, w, padding=1)
        assert y.is_contiguous(memory_format=mr.channels_last) and not y.is_contiguous()
        y.backward(mr.tensor(rng.standard_normal(y.shape).astype(dtype)))
    assert w.grad.is_contiguous(memory_format=mr.channels_last) and x.grad.shape == x.shape
    expected = F.conv2d(x.detach(), w.detach().contiguous(), padding=1)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-5, atol=1e-4)


def test_new_convolution_weights_are_channels_last_where_the_direct_kernels_run():
    """nn.Conv2d stores its weight as the socket says: channels-last memory (NCHW shape) where float32 runs
    the direct kernels, so a PyTorch-style loop on NCHW tensors runs them; NCHW memory elsewhere."""
    layer = mr.nn.Conv2d(3, 16, 3)
    assert layer.weight.shape == (16, 3, 3, 3)
    expected = kernels.conv2d_weight_format(np.float32)
    assert layer.weight.is_contiguous(memory_format=mr.channels_last if expected == "channels_last" else
                                      mr.contiguous_format)
    with kernels.using("reference"):
        assert kernels.conv2d_weight_format(np.float32) == "contiguous_format"
    assert kernels.conv2d_weight_format(np.float64) == "contiguous_format"
