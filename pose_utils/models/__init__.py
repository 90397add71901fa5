"""The models: an explicit registry of their names, and `build_model`.

`build_model("seed")` is the report's "dynamic regression model" (`seed.py`, the model a student writes
first). The others are steps away from it, each explained in docs/models.md: `seed_tanh` (the seed as
the report's code ran it: a tanh head on raw metres), `seed_linear` (a linear head), the compact CNN
models of `cnn.py` (`cnn_frame`, `cnn_lstm`, `cnn_tcn`), their training-time augmentation layers
(`layers.py`) and the training-only 2-D keypoint head (`keypoint_head.py`); `challenge` is the
student's own design (`challenge.py`, notebook 06).

Every builder takes (frames, frame_size, **options) and returns a keras.Model mapping
(B, frames, S, S, 3) float32 in [0, 1] to (B, frames, 17, 3) float32 in its target space. Builders are
named as "module:function" and imported on first use, so `import pose_utils` does not load Keras.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from pose_utils.errors import ConfigError
from pose_utils.skeleton import NUM_FRAMES


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, the target transform its head needs, one line of description.

    builder: "module:function" within pose_utils.models. target_transform: "minmax" for a sigmoid head
    (targets squeezed into (0, 1)), "standard" for a linear head on standardised targets, "identity"
    for a head that outputs metres.
    """

    builder: str
    target_transform: str
    description: str
    compared: bool = True  # in the benchmark's comparison (docs/models.md); not the student's challenge

    def load(self):
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)


# In the order of docs/models.md: the report's model first, then the steps away from it.
MODELS: dict[str, ModelSpec] = {
    "seed": ModelSpec(
        "seed:build_seed", "minmax",
        "the report's model: conv 5x5x32, max-pool (1,2,2), LSTM(50), sigmoid head"),
    "seed_tanh": ModelSpec(
        "seed:build_seed_tanh", "identity",
        "the report's model as its code ran: the same stack with a tanh head on raw metres"),
    "seed_linear": ModelSpec(
        "seed:build_seed_linear", "standard",
        "the seed's stack (conv 5x5x32, pool, LSTM(50)) with a linear head on standardised targets"),
    "cnn_frame": ModelSpec(
        "cnn:build_cnn_frame", "standard",
        "compact per-frame CNN backbone (stride-2 stem, 3 conv+BN+pool blocks), linear head; no time"),
    "cnn_lstm": ModelSpec(
        "cnn:build_cnn_lstm", "standard",
        "the CNN backbone, then an LSTM over the frames and a linear head "
        "(the seed's design, both flaws fixed)"),
    "cnn_tcn": ModelSpec(
        "cnn:build_cnn_tcn", "standard",
        "the CNN backbone, then residual temporal convolutions (kernel 3, both directions) "
        "and a linear head"),
    "challenge": ModelSpec(
        "challenge:build_challenge", "standard",
        "the challenge: a model of the student's design within a budget (notebook 06)", compared=False),
}


def model_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a ConfigError listing the known names."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def available_models() -> list[str]:
    return sorted(MODELS)


def compared_models() -> list[str]:
    """The project's models, which the benchmark compares: all but the student's challenge model."""
    return sorted(name for name, spec in MODELS.items() if spec.compared)


def build_model(name: str = "seed", frames: int = NUM_FRAMES, frame_size: int = 224, **options):
    """Build a registered model for clips of `frames` RGB frames of `frame_size`×`frame_size` pixels.

    Inputs of the returned keras.Model: (B, frames, frame_size, frame_size, 3) float32 in [0, 1].
    Outputs: (B, frames, 17, 3) float32, in the space of the model's target transform.
    """
    spec = model_spec(name)
    for key, value in (("frames", frames), ("frame_size", frame_size)):
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    builder = spec.load()
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        raise ConfigError(f"model {name!r} does not take option(s) {', '.join(unknown)}")
    return builder(frames=frames, frame_size=frame_size, **options)


def register_layers() -> None:
    """Register the custom layers with Keras, so a saved model that uses them loads (safe mode)."""
    importlib.import_module(f"{__name__}.layers")
