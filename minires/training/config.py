"""The configuration of a training run: everything needed to rebuild it, saved in every checkpoint."""
import dataclasses
from dataclasses import dataclass

from ..errors import ArgumentError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "multistep", "constant")
MEMORY_FORMATS = ("channels_last", "contiguous_format")


@dataclass
class TrainConfig:
    model: str = "resnet20"
    data: str = "digits"
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4  # on convolution and fc weights; none on batch-norm parameters and biases
    schedule: str = "cosine"
    milestones: tuple = (0.5, 0.75)  # multistep: fractions of the epochs where the lr drops by 10
    warmup_epochs: int = 0
    seed: int = 0
    device: str = "cpu"
    image_size: int = 64  # folder data: images are resized to this
    memory_format: str = "channels_last"  # the fast CPU convolutions want it (docs: benchmarks/RESULTS.md)

    def __post_init__(self):
        checks = [(self.epochs >= 1, "epochs must be at least 1"), (self.batch_size >= 1, "batch_size must be >= 1"),
                  (self.lr > 0, "lr must be positive"), (self.weight_decay >= 0, "weight_decay must be >= 0"),
                  (0 <= self.momentum < 1, "momentum must lie in [0, 1)"),
                  (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
                  (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}"),
                  (0 <= self.warmup_epochs < self.epochs, "warmup_epochs must be less than epochs"),
                  (8 <= self.image_size <= 1024, "image_size must lie in 8..1024"),
                  (self.memory_format in MEMORY_FORMATS, f"memory_format must be one of {MEMORY_FORMATS}")]
        for ok, message in checks:
            if not ok:
                raise ArgumentError(f"training configuration: {message}")
        self.milestones = tuple(self.milestones)

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values):
        """The configuration saved in a checkpoint; a wrong-typed field is an ArgumentError naming it."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kept = {"memory_format": "contiguous_format"}  # runs saved before it was a field trained NCHW
        kept.update((k, v) for k, v in values.items() if k in fields)
        for key, value in kept.items():
            expected = type(fields[key].default)
            expected = (int, float) if expected is float else (list, tuple) if expected is tuple else expected
            if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
                raise ArgumentError(f"training configuration: {key} should be a "
                                    f"{getattr(expected, '__name__', 'number')}, got {value!r:.60}")
        return cls(**kept)
