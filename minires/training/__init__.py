"""Training (``minires.training``): TrainConfig, Trainer (fit, evaluate, exact resume), and loading a
finished run for evaluation and prediction."""
from .config import TrainConfig
from .inference import load_trained, predict_images
from .run_checkpoint import read_run
from .trainer import Callbacks, Trainer, TrainingDiverged, TrainingInterrupted, evaluate_model

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "TrainingInterrupted", "Callbacks", "evaluate_model", "read_run",
           "load_trained", "predict_images"]
