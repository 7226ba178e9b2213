"""A training run's checkpoint: one safetensors file holding the model, the optimiser state and, in its
metadata, the run's JSON state (epoch, step, metrics, schedule, config, versions). One file, so one atomic
rename makes it durable: a crash mid-write leaves the previous checkpoint whole.

Beside it, for people and other tools: ``model.safetensors`` (the weights alone, torchvision key names) and
``state.json`` (the same JSON state, readable).
"""
import json
import os
import platform

import numpy as np

from .. import checkpoint as weights_io
from ..files import atomic_write_bytes
from ..errors import MissingFileError
from ..version import __version__

CHECKPOINT = "checkpoint.safetensors"
STATE_KEY = "minires.run_state"


def versions():
    import numba

    return {"minires": __version__, "numpy": np.__version__, "numba": numba.__version__,
            "python": platform.python_version()}


def save_run(directory, model, optimizer, scheduler, state):
    """Write the run's checkpoint (atomically), then the convenience copies."""
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    scalars = {}
    for index, values in opt_state["state"].items():
        for name, value in values.items():
            if isinstance(value, np.ndarray):
                tensors[f"optimizer/{index}/{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    run_state = {**state, "versions": versions(), "scheduler": scheduler.state_dict(),
                 "optimizer": {"param_groups": opt_state["param_groups"], "scalars": scalars}}
    text = json.dumps(run_state, indent=1)
    weights_io.save(tensors, os.path.join(directory, CHECKPOINT), metadata={STATE_KEY: text})
    weights_io.save(model.state_dict(), os.path.join(directory, "model.safetensors"),
                    metadata={"format": "minires", "model": state["config"]["model"]})
    atomic_write_bytes(os.path.join(directory, "state.json"), text.encode())


def read_run(directory):
    """(tensors, run_state) from a run directory; clear errors for a missing or damaged checkpoint."""
    path = os.path.join(directory, CHECKPOINT)
    if not os.path.isdir(directory):
        raise MissingFileError(f"no run directory {directory!r}: it does not exist (a run stopped before its first "
                               f"step saves nothing; start it again without --resume)")
    if not os.path.isfile(path):
        raise MissingFileError(f"no training checkpoint in {directory!r} (expected {CHECKPOINT})")
    tensors, metadata = weights_io.load_with_metadata(path)
    text = metadata.get(STATE_KEY)
    if text is None:
        raise weights_io.CheckpointError(f"{path!r} is a safetensors file but not a minires training checkpoint")
    try:
        run_state = json.loads(text)
    except ValueError as exc:
        raise weights_io.CheckpointError(f"{path!r}: its run state is not JSON ({exc})") from None
    problem = _run_state_problem(run_state)
    if problem:
        raise weights_io.CheckpointError(f"{path!r}: a damaged run state: {problem}")
    return tensors, run_state


# field -> type of a run state's top level, and of its data description (what training and predict rely on)
RUN_STATE_TYPES = {"epoch": int, "batch": int, "step": int, "history": list, "partial": dict, "config": dict,
                   "data": dict, "scheduler": dict, "optimizer": dict}
DATA_TYPES = {"classes": list, "input_shape": list, "mean": list, "std": list}
TYPE_WORDS = {int: "an integer", list: "a list", dict: "an object"}


def _run_state_problem(state):
    """What is wrong with a run state read from a checkpoint, or None: checked before anything is built from
    it, so a hand-edited or crafted file gives one clear error instead of a traceback or a huge allocation."""
    if not isinstance(state, dict):
        return f"expected a JSON object, got {type(state).__name__}"
    for fields, where, values in ((RUN_STATE_TYPES, "", state), (DATA_TYPES, "data.", state.get("data", {}))):
        for key, kind in fields.items():
            if not isinstance(values.get(key), kind) or isinstance(values.get(key), bool):
                return f"{where}{key} should be {TYPE_WORDS[kind]}, got {values.get(key)!r:.60}"
    if min(state["epoch"], state["batch"], state["step"]) < 0:
        return "negative epoch, batch or step"
    data = state["data"]
    shape = data["input_shape"]
    if len(shape) != 3 or not all(isinstance(n, int) for n in shape) or shape[0] not in (1, 3) \
            or not all(1 <= n <= 1024 for n in shape[1:]):
        return f"data.input_shape should be [1 or 3 channels, height, width] up to 1024, got {shape!r:.60}"
    if not data["classes"] or not all(isinstance(c, str) for c in data["classes"]):
        return "data.classes should be a non-empty list of names"
    if not all(len(data[k]) == shape[0] and all(isinstance(v, (int, float)) for v in data[k]) for k in ("mean", "std")):
        return f"data.mean and data.std should hold {shape[0]} numbers each"
    return None


def restore_run(tensors, run_state, model, optimizer, scheduler):
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    state = {int(i): dict(values) for i, values in run_state["optimizer"]["scalars"].items()}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": run_state["optimizer"]["param_groups"]})
    scheduler.load_state_dict(run_state["scheduler"])
