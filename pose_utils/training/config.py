"""One training configuration, `TrainConfig` (its defaults are the report's recipe), and the
command-line flags of `train`, generated from it (`FLAGS`, `given_flags`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from pose_utils.errors import ConfigError
from pose_utils.training.epochs import RECORDED_KEYS

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multiworker")
# "cosine": the learning rate falls from learning_rate to COSINE_FLOOR x learning_rate along half a cosine
# over the run's steps; the last epochs then average out the batch-to-batch noise of a constant rate.
LR_SCHEDULES = ("constant", "cosine")
COSINE_FLOOR = 0.01
# "mse": the report's eq. 2, mean squared error in the target space. "mpjpe": the metric itself, the mean
# Euclidean joint error in metres; it pulls less hard on the few large errors than a square does, so an
# ambiguous pose (front or back?) is not pulled to the average of its answers.
LOSSES = ("mse", "mpjpe")
UNITS = ("m", "mm")
# What a run's history holds per epoch: what run_epochs records (epochs.py), then the engine's timings.
HISTORY_KEYS = RECORDED_KEYS + ("epoch_seconds", "clips_per_second")
# Also in the history of a run with keypoint_loss: the training clips' mean 2-D keypoint error per epoch.
KEYPOINT_HISTORY_KEY = "train_keypoint_error"
# Config keys that change how fast a run trains, never what it computes.
SPEED_KEYS = ("cache_frames",)
# Config keys a resumed run may change: they say how long or how fast to train, not what is trained.
RESUMABLE_CHANGES = ("epochs",) + SPEED_KEYS



@dataclass
class TrainConfig:
    """Everything that decides a training run; the defaults are the report's recipe.

    target_transform: None uses the model's own (`models.model_spec(model).target_transform`).
    jit_compile: compile the step with XLA. eval_batch_size: batch for validation and prediction.
    lr_schedule: "constant" (the report's) or "cosine" (decay over `epochs`; see LR_SCHEDULES).
    roll_augment: turn each training clip and its labels by up to this many degrees in the image plane
    (a camera roll, `data.roll_clips`); 0 for none. loss: what training minimises (LOSSES); the history's
    train_loss / val_loss are the report's MSE either way. keypoint_loss: weight of an extra training
    loss, the mean 2-D distance (normalised image units) between the joints' projections
    (`ClipStore.keypoints`, HDF5 data only) and keypoints read off the CNN backbone
    (`models.keypoint_head.keypoint_model`); 0 for none. It shapes the backbone only: the saved model is
    the pose model alone.
    max_train_clips / max_valid_clips: use that many clips spread evenly over the split (None: all).
    cache_frames: hold both splits' frames in memory (`ClipStore.cache_frames`): same results, faster
    epochs when they fit (a ConfigError says when they do not).
    units: unit of the stored labels ("m" or "mm"); training always works in metres.
    """

    model: str = "seed"
    epochs: int = 30
    batch_size: int = 5
    learning_rate: float = 1e-4
    seed: int = 0
    precision: str = "float32"
    strategy: str = "default"
    cpu_replicas: int | None = None
    max_train_clips: int | None = None
    max_valid_clips: int | None = None
    units: str = "m"
    flip_augment: bool = False
    model_options: dict = field(default_factory=dict)
    target_transform: str | None = None
    jit_compile: bool = False
    eval_batch_size: int = 32
    lr_schedule: str = "constant"
    roll_augment: float = 0.0
    loss: str = "mse"
    keypoint_loss: float = 0.0
    cache_frames: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first bad value."""
        from pose_utils.models import model_spec
        from pose_utils.targets import KINDS

        def positive_int(name, optional=False):
            value = getattr(self, name)
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")

        for name in ("epochs", "batch_size", "eval_batch_size"):
            positive_int(name)
        for name in ("cpu_replicas", "max_train_clips", "max_valid_clips"):
            positive_int(name, optional=True)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr < math.inf):
            raise ConfigError(f"learning_rate must be a positive finite number, got {lr!r}")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, (int, np.integer))
            or not 0 <= self.seed < 2**32
        ):
            raise ConfigError(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        for name, allowed in (("precision", PRECISIONS), ("strategy", STRATEGIES), ("units", UNITS),
                              ("lr_schedule", LR_SCHEDULES), ("loss", LOSSES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("flip_augment", "jit_compile", "cache_frames"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        roll = self.roll_augment
        if isinstance(roll, bool) or not isinstance(roll, (int, float)) or not 0 <= roll <= 180:
            raise ConfigError(f"roll_augment must be a number of degrees in [0, 180], got {roll!r}")
        kp = self.keypoint_loss
        if isinstance(kp, bool) or not isinstance(kp, (int, float)) or not 0 <= kp < math.inf:
            raise ConfigError(f"keypoint_loss must be a finite number >= 0, got {kp!r}")
        if not isinstance(self.model_options, dict) or not all(
            isinstance(k, str) for k in self.model_options
        ):
            raise ConfigError(f"model_options must be a dict with string keys, got {self.model_options!r}")
        if self.target_transform is not None and self.target_transform not in KINDS:
            raise ConfigError(
                f"target_transform must be one of {', '.join(KINDS)} or None, got {self.target_transform!r}"
            )
        if self.cpu_replicas is not None and self.strategy != "mirrored":
            raise ConfigError(
                f"cpu_replicas={self.cpu_replicas} needs strategy 'mirrored', got {self.strategy!r}"
            )
        model_spec(self.model)  # ConfigError listing the known models

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict (e.g. config.json); unknown keys are a ConfigError naming them."""
        if not isinstance(d, dict):
            raise ConfigError(f"a training config must be a dict, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"unknown training config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @property
    def transform_kind(self) -> str:
        from pose_utils.models import model_spec

        return self.target_transform or model_spec(self.model).target_transform


@dataclass(frozen=True)
class Flag:
    """How one TrainConfig key appears on the command line (`python -m pose_utils train`).

    kind: "positive_int", "positive_float", "int", "float", "choice" (choices), "switch" (a flag without
    a value that sets True), "option" (repeatable NAME=VALUE pairs into a dict).
    """

    flag: str
    kind: str
    help: str = ""
    choices: tuple[str, ...] = ()
    metavar: str | None = None


# TrainConfig key -> its flag; keys without one (target_transform, eval_batch_size) are API-only.
FLAGS: dict[str, Flag] = {
    "model": Flag("--model", "text", "model name from the registry (default: seed)"),
    "epochs": Flag("--epochs", "positive_int"),
    "batch_size": Flag("--batch-size", "positive_int"),
    "learning_rate": Flag("--lr", "positive_float"),
    "lr_schedule": Flag("--lr-schedule", "choice",
                        "constant (the report's, default) or cosine decay over the epochs", LR_SCHEDULES),
    "loss": Flag("--loss", "choice", "mse (the report's eq. 2, default) or mpjpe (the metric itself)",
                 LOSSES),
    "seed": Flag("--seed", "int"),
    "precision": Flag("--precision", "choice", choices=PRECISIONS),
    "strategy": Flag("--strategy", "choice", choices=STRATEGIES),
    "cpu_replicas": Flag("--cpu-replicas", "positive_int"),
    "units": Flag("--units", "choice", "stored labels' units (default: m)", UNITS),
    "max_train_clips": Flag("--max-train-clips", "positive_int"),
    "max_valid_clips": Flag("--max-valid-clips", "positive_int"),
    "flip_augment": Flag("--flip-augment", "switch", "mirror about half the clips"),
    "model_options": Flag("--model-option", "option",
                          "a model option, e.g. color_jitter=0.2 (repeat for more; see docs/models.md)",
                          metavar="NAME=VALUE"),
    "roll_augment": Flag("--roll-augment", "float",
                         "turn each clip and its labels by up to this angle in the image plane",
                         metavar="DEGREES"),
    "keypoint_loss": Flag("--keypoint-loss", "float",
                          "add WEIGHT x the 2-D keypoint error of a head on the CNN backbone to the loss "
                          "(HDF5 data with root and intrinsics; e.g. 3)", metavar="WEIGHT"),
    "cache_frames": Flag("--cache-frames", "switch", "hold the frames in memory (faster epochs when both "
                         "splits fit)"),
    "jit_compile": Flag("--jit-compile", "switch", "compile the step with XLA"),
}


def given_flags(args) -> dict:
    """The TrainConfig keys set on the command line (parsed by `cli`), as a dict for `from_dict`."""
    given = {}
    for key, spec in FLAGS.items():
        value = getattr(args, key, None)
        if value is not None:
            given[key] = dict(value) if spec.kind == "option" else value
    return given
