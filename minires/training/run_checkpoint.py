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
    weights_io.atomic_write_bytes(os.path.join(directory, "state.json"), text.encode())


def read_run(directory):
    """(tensors, run_state) from a run directory; clear errors for a missing or damaged checkpoint."""
    path = os.path.join(directory, CHECKPOINT)
    if not os.path.isfile(path):
        raise MissingFileError(f"no training checkpoint in {directory!r} (expected {CHECKPOINT})")
    tensors = weights_io.load(path)
    text = weights_io.load_metadata(path).get(STATE_KEY)
    if text is None:
        raise weights_io.CheckpointError(f"{path!r} is a safetensors file but not a minires training checkpoint")
    return tensors, json.loads(text)


def restore_run(tensors, run_state, model, optimizer, scheduler):
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    state = {int(i): dict(values) for i, values in run_state["optimizer"]["scalars"].items()}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": run_state["optimizer"]["param_groups"]})
    scheduler.load_state_dict(run_state["scheduler"])
