"""minires.save / minires.load for what training scripts save: nested dicts, lists and tuples of tensors,
arrays, numbers, strings and None, as safetensors with the structure in its JSON header."""
import collections
import json

import numpy as np
import pytest

import minires as mr
from minires.checkpoint import CheckpointError, load_metadata


def test_a_checkpoint_dict_comes_back_as_it_was_saved(tmp_path):
    model = mr.nn.Sequential(mr.nn.Conv2d(1, 2, 3), mr.nn.BatchNorm2d(2))
    optimizer = mr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mr.F.cross_entropy(mr.F.flatten(model(mr.randn(2, 1, 4, 4)), 1)[:, :2], np.array([0, 1])).backward()
    optimizer.step()
    checkpoint = {"epoch": 7, "arch": "resnet20", "best_prec1": 91.25, "ratio": float("inf"), "done": False,
                  "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), "note": None,
                  "history": [(1, 0.5), (2, 0.25)], "size": mr.zeros(2, 3).size(), "raw": np.arange(3)}
    path = tmp_path / "checkpoint.pth.tar"
    mr.save(checkpoint, path)
    loaded = mr.load(path)
    assert type(loaded) is dict and list(loaded) == list(checkpoint)
    assert loaded["epoch"] == 7 and type(loaded["epoch"]) is int and loaded["best_prec1"] == 91.25
    assert loaded["ratio"] == float("inf") and loaded["done"] is False and loaded["note"] is None
    assert loaded["history"] == [(1, 0.5), (2, 0.25)] and isinstance(loaded["size"], mr.Size)
    assert isinstance(loaded["raw"], np.ndarray) and loaded["raw"].tolist() == [0, 1, 2]
    assert isinstance(loaded["state_dict"], collections.OrderedDict)
    for key, value in model.state_dict().items():
        assert isinstance(loaded["state_dict"][key], mr.Tensor)
        np.testing.assert_array_equal(loaded["state_dict"][key].numpy(), value.numpy())
    assert list(loaded["optimizer"]["state"]) == list(optimizer.state_dict()["state"])  # int keys stay ints
    fresh = mr.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    fresh.load_state_dict(loaded["optimizer"])
    assert fresh.param_groups[0]["lr"] == 0.1
    model.load_state_dict(loaded["state_dict"])
    structure = json.loads(load_metadata(path)["minires.structure"])
    assert "dict" in structure


def test_a_plain_safetensors_file_loads_as_an_ordered_dict_of_tensors(tmp_path):
    from minires import checkpoint
    checkpoint.save({"b": np.ones(2, np.float32), "a": np.zeros(1, np.int64)}, tmp_path / "w.safetensors")
    loaded = mr.load(tmp_path / "w.safetensors")
    assert list(loaded) == ["b", "a"] and all(isinstance(v, mr.Tensor) for v in loaded.values())


@pytest.mark.parametrize("bad, where", [
    ({"model": mr.nn.Linear(1, 1)}, "the object['model']"), ([object()], "the object[0]"),
    ({(1, 2): 3}, "a dict key"), ({"f": lambda: 0}, "function"),
])
def test_what_cannot_be_saved_is_named_and_nothing_is_written(tmp_path, bad, where):
    path = tmp_path / "x.pt"
    with pytest.raises(TypeError, match="save: ") as info:
        mr.save(bad, path)
    assert where in str(info.value) and not path.exists()


def test_load_refuses_options_that_would_run_pickle_code(tmp_path):
    mr.save({"a": 1}, tmp_path / "x.pt")
    assert mr.load(tmp_path / "x.pt", weights_only=True) == {"a": 1}
    with pytest.raises(TypeError, match="never runs pickle code"):
        mr.load(tmp_path / "x.pt", weights_only=False)
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        mr.load(tmp_path / "nowhere.pt")


def test_a_damaged_structure_is_a_clear_error(tmp_path):
    from minires import checkpoint
    checkpoint.save({"0": np.ones(1)}, tmp_path / "x.pt", metadata={"minires.structure": '{"dict": [["a", {"tensor": "9"}]]}'})
    with pytest.raises(CheckpointError, match="structure is damaged"):
        mr.load(tmp_path / "x.pt")


def test_map_location_moves_tensors(tmp_path):
    mr.save({"w": mr.ones(2)}, tmp_path / "x.pt")
    assert mr.load(tmp_path / "x.pt", map_location="cpu")["w"].device == "cpu"
    assert mr.load(tmp_path / "x.pt", map_location=mr.device("cpu"))["w"].tolist() == [1.0, 1.0]
