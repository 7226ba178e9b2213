"""Files written by torch.save, read without torch's unpickler (minires/weights_only_unpickler.py): the
values equal torch's for both formats, and hostile or damaged pickles are refused before anything runs
(a sentinel file proves no payload executed)."""
import collections
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import minires as mr
from minires.checkpoint import CheckpointError
from minires.cli import main

torch = pytest.importorskip("torch")


def saved_by_torch(obj, path, legacy=False):
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def assert_same(ours, theirs, where="obj"):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, mr.Tensor), where
        assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", "")), where
        np.testing.assert_array_equal(ours.numpy(), theirs.detach().numpy(), err_msg=where)
        assert isinstance(ours, mr.nn.Parameter) == isinstance(theirs, torch.nn.Parameter), where
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, (list, tuple)) and not isinstance(theirs, torch.Size):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, torch.device):
        assert ours == str(theirs), where
    else:
        assert ours == theirs and type(ours) is type(theirs) or isinstance(theirs, torch.Size), where


def checkpoint_like_a_script_saves():
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                                torch.nn.Linear(3, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 2, 3, 3)).sum().backward()
    optimizer.step()
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    return {"epoch": 7, "arch": "resnet20", "best_prec1": 91.25, "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(), "flags": [True, None, (1, 2.5)],
            "views": [base.t(), base[1:, ::2], base[2]],  # views into one storage, non-contiguous
            "dtypes": [torch.arange(3, dtype=d) for d in (torch.int64, torch.int32, torch.uint8, torch.int8,
                                                          torch.int16, torch.float16, torch.float32)]
            + [torch.tensor([True, False])],
            "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3), "parameter": torch.nn.Parameter(torch.ones(2)),
            "size": torch.Size([2, 3]), "bytes": b"\x00\xffab"}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_torch_save_checkpoint_loads_with_the_same_values(tmp_path, legacy):
    obj = checkpoint_like_a_script_saves()
    path = saved_by_torch(obj, tmp_path / "checkpoint.pth.tar", legacy)
    ours = mr.load(path)
    theirs = torch.load(path, weights_only=True)
    assert_same(ours, theirs)
    assert isinstance(ours["size"], mr.Size) and ours["size"] == (2, 3)


def test_a_torch_state_dict_loads_into_the_minires_twin(tmp_path):
    from minires.models import resnet20

    from minires.verify.torch_reference import build  # the torch twin the parity tests use
    twin = build("resnet20")
    path = saved_by_torch(twin.state_dict(), tmp_path / "resnet20.th")
    model = resnet20()
    model.load_state_dict(mr.load(path))
    model.eval(), twin.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(model(mr.tensor(x)).numpy(), twin(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_convert_reads_a_torch_checkpoint_dict(tmp_path, capsys):
    from minires.verify.torch_reference import build
    twin = build("resnet20")
    path = saved_by_torch({"epoch": 3, "state_dict": twin.state_dict()}, tmp_path / "ck.pt")
    out = tmp_path / "m.safetensors"
    assert main(["convert", str(path), str(out), "--model", "resnet20"]) == 0
    assert "checked against resnet20" in capsys.readouterr().out
    assert main(["convert", str(saved_by_torch({"epoch": 3}, tmp_path / "no.pt")), str(tmp_path / "x")]) == 2
    assert "holds no state_dict" in capsys.readouterr().err


# --- hostile and damaged files ---------------------------------------------------------------------------
class Payload:
    """Pickles as a call of ``function(*args)``; only its bytes are used (nothing here unpickles them)."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def as_torch_zip(pickle_bytes, path, extra=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/version", "3\n")
        for name, data in (extra or {}).items():
            archive.writestr(f"archive/{name}", data)
    return path


def legacy_stream(main_pickle):
    return b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {})) + main_pickle


def hostile_pickles(sentinel):
    command = f"touch {sentinel}"
    code = f"open({str(sentinel)!r}, 'w')"
    nested_global = (b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00a" + b"cposix\nsystem\n(X"
                     + struct.pack("<I", len(command)) + command.encode() + b"tRu.")
    stack_global = (b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c" + bytes([len(command)]) + command.encode()
                    + b"\x85R.")
    smuggled_callable = b"\x80\x02ccollections\nOrderedDict\n(cbuiltins\neval\ntR."
    return {
        "os.system via __reduce__": pickle.dumps({"w": Payload(os.system, command)}, protocol=2),
        "builtins.eval": pickle.dumps(Payload(eval, code), protocol=2),
        "builtins.exec, protocol 4": pickle.dumps([Payload(exec, code)], protocol=4),
        "getattr on an allowed global": pickle.dumps(Payload(getattr, collections.OrderedDict, "fromkeys"), protocol=2),
        "a GLOBAL nested in an allowed call": nested_global,
        "STACK_GLOBAL": stack_global,
        "a callable passed to an allowed global": smuggled_callable,
        "INST opcode": b"(S'" + command.encode() + b"'\nios\nsystem\n.",
        "OBJ opcode": b"\x80\x02(cos\nsystem\nX" + struct.pack("<I", len(command)) + command.encode() + b"o.",
    }


@pytest.mark.parametrize("container", ["zip", "legacy", "bare"])
def test_hostile_pickles_are_refused_and_nothing_runs(tmp_path, container):
    sentinel = tmp_path / "SENTINEL"
    for name, payload in hostile_pickles(sentinel).items():
        path = tmp_path / f"evil-{container}.pt"
        if container == "zip":
            as_torch_zip(payload, path)
        else:
            path.write_bytes(legacy_stream(payload) if container == "legacy" else payload)
        with pytest.raises(CheckpointError, match="refused|not a torch.save file|not a valid safetensors") as info:
            mr.load(path)
        assert not sentinel.exists(), name
        assert "Traceback" not in str(info.value)


def tamper(data, old, new):
    assert data.count(old) >= 1
    return data.replace(old, new, 1)


def rezip(path, rewrite, out):
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info.filename, rewrite(info.filename, data))
    return out


def test_a_huge_declared_storage_or_tensor_is_refused_without_reading_it(tmp_path):
    path = saved_by_torch({"w": torch.ones(5)}, tmp_path / "small.pt")
    # the storage says it holds 2**31 - 1 floats (8 GiB) where the archive has 20 bytes
    huge_storage = rezip(path, lambda name, data: tamper(data, b"cpu", b"cpu")[:0] + data.replace(
        b"K\x05t", b"J\xff\xff\xff\x7ft", 1) if name.endswith("data.pkl") else data, tmp_path / "huge.pt")
    with pytest.raises(CheckpointError, match="declares 2147483647 elements"):
        mr.load(huge_storage)
    # the tensor claims a size of 10**9 with stride 0 over that small storage
    stretched = rezip(path, lambda name, data: data.replace(b"K\x05\x85", b"J\x00\xca\x9a;\x85", 1).replace(
        b"K\x01\x85", b"K\x00\x85", 1) if name.endswith("data.pkl") else data, tmp_path / "stretched.pt")
    with pytest.raises(CheckpointError, match="refused: a tensor of 1000000000 elements"):
        mr.load(stretched)
    # a tensor that reaches past the end of its storage
    past = rezip(path, lambda name, data: data.replace(b"K\x05\x85", b"K\x09\x85", 1)
                 if name.endswith("data.pkl") else data, tmp_path / "past.pt")
    with pytest.raises(CheckpointError, match="reaches element 8 of a storage of 5"):
        mr.load(past)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_truncated_torch_file_is_refused(tmp_path, legacy):
    data = saved_by_torch(checkpoint_like_a_script_saves(), tmp_path / "full.pt", legacy).read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        path = tmp_path / "cut.pt"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            mr.load(path)


def test_tensors_minires_cannot_hold_are_named(tmp_path):
    path = saved_by_torch({"b": torch.ones(2, dtype=torch.bfloat16)}, tmp_path / "bf16.pt")
    with pytest.raises(CheckpointError, match="cannot load"):
        mr.load(path)
    path = saved_by_torch({"s": torch.eye(2).to_sparse()}, tmp_path / "sparse.pt")
    with pytest.raises(CheckpointError, match="sparse tensor"):
        mr.load(path)


def test_an_allowed_global_list_matches_torch_s_weights_only_list():
    """Every global torch's weights_only unpickler accepts is known here (built or refused by name), and
    nothing else is: the two lists are the same set of names."""
    from torch import _weights_only_unpickler
    from minires.weights_only_unpickler import ALLOWED
    theirs = set(_weights_only_unpickler._get_allowed_globals())
    missing = {name for name in theirs if name not in ALLOWED}
    assert not missing, sorted(missing)
    assert not {name for name in ALLOWED if name not in theirs}
