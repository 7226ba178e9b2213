"""Using a finished run: rebuild its model from the checkpoint, evaluate it, classify image files."""
import numpy as np

from .. import functional as F
from ..data import load_image
from ..grad_mode import no_grad
from ..tensor import Tensor
from . import build
from .config import TrainConfig
from .run_checkpoint import read_run


def load_trained(directory, device="cpu"):
    """(model in eval mode, config, data description) from a run directory."""
    tensors, run_state = read_run(directory)
    config = TrainConfig.from_dict(run_state["config"])
    described = run_state["data"]
    model = build.build_model(config, len(described["classes"]), described["input_shape"][0])
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    return model.to(device).eval(), config, described


def preprocess(path, described):
    """An image file prepared as the model's training data was: channels, size, scale, normalisation."""
    channels, size = described["input_shape"][0], described["input_shape"][1]
    image = load_image(path, size, mode="L" if channels == 1 else "RGB")
    if described.get("ink_is_high") and image.mean() > 0.5:
        image = 1.0 - image  # dark ink on a light page: the training images have light ink on black
    mean = np.asarray(described["mean"], np.float32).reshape(-1, 1, 1)
    std = np.asarray(described["std"], np.float32).reshape(-1, 1, 1)
    return (image - mean) / std


def predict_images(model, described, paths, top=3, device="cpu"):
    """For each image path, the ``top`` (class name, probability) pairs."""
    batch = np.stack([preprocess(path, described) for path in paths]).astype(np.float32)
    with no_grad():
        probabilities = F.softmax(model(Tensor(batch, device=device)), axis=1).numpy()
    classes = described["classes"]
    results = []
    for row in probabilities:
        best = np.argsort(row)[::-1][:top]
        results.append([(classes[i], float(row[i])) for i in best])
    return results
