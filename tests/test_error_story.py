"""One error story: every error minires raises on purpose derives from MiniresError (and from the built-in
error users already catch), and the command line turns each into one line on stderr with exit code 2."""
import ast
import builtins
import inspect
import pathlib

import pytest

import minires
from minires import checkpoint, errors, gradcheck, nn, training

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}
ALLOWED = {("minires/training/stop_requests.py", "KeyboardInterrupt"),  # a second Ctrl-C: stop at once
           ("minires/nn/module.py", "AttributeError"),  # Module.__getattr__: Python's protocol for hasattr
           ("minires/tensor.py", "AttributeError"),  # Tensor.__getattr__: the same protocol ("not yet" message)
           ("kernels/direct/simd.py", "IndexError"),  # the bounds-checked build's verdict on a kernel: a bug, not a fault
           ("kernels/registry.py", "RuntimeError")}  # two families defining one kernel name: a bug, refused at import


def raised_builtins():
    for path in sorted([*ROOT.glob("minires/**/*.py"), *ROOT.glob("kernels/**/*.py")]):
        relative = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(call, ast.Name) and call.id in BUILTIN_ERRORS and (relative, call.id) not in ALLOWED:
                    yield f"{relative}:{node.lineno} raises {call.id}"


def test_minires_raises_no_bare_builtin_error():
    assert list(raised_builtins()) == []


def test_every_error_class_derives_from_miniresError_and_a_builtin_one():
    classes = [value for module in (errors, checkpoint, nn.module, training.trainer, gradcheck)
               for value in vars(module).values()
               if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == module.__name__]
    assert len(classes) >= 15
    for cls in classes:
        assert issubclass(cls, errors.MiniresError), cls
        assert cls is errors.MiniresError or any(base in vars(builtins).values() and base is not Exception
                                                 for base in cls.__mro__[1:-2]), cls


@pytest.mark.parametrize("error, builtin", [(errors.ShapeError, ValueError), (errors.DTypeError, TypeError),
                                            (errors.UnknownNameError, KeyError),
                                            (errors.MissingFileError, FileNotFoundError),
                                            (minires.nn.StateDictError, KeyError)])
def test_users_can_keep_catching_the_builtin_errors(error, builtin):
    assert issubclass(error, builtin) and issubclass(error, errors.MiniresError)
