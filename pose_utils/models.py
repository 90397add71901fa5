"""Model builders and the registry of model names.

`build_model("seed")` is the report's "dynamic regression model". The report (TF 2.4) fed the 5-D clip
tensor straight into `Conv2D`; Keras 3 rejects that ("Kernel shape must have the same length as
input"). We write the same per-frame 5×5 convolution as `Conv3D(32, (1, 5, 5))`: a kernel one frame deep
applies the same 5×5×3×32 filter bank to every frame independently, exactly what the old Conv2D did, with
the same parameter count (2,432) and output shape. We chose it over `TimeDistributed(Conv2D)` because it
measured faster on this CPU (NOTES.md: ~0.20 vs ~0.30 s per training step) and saves as one plain layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConfigError
from .skeleton import NUM_FRAMES, NUM_JOINTS

# Seed architecture constants from the report.
SEED_FILTERS = 32
SEED_KERNEL = 5
SEED_POOL = (1, 2, 2)
SEED_LSTM_UNITS = 50


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and which target transform its head needs.

    target_transform: "minmax" for a sigmoid head (targets squeezed into (0, 1)), "standard" for a
    linear head on standardised targets, "identity" for a linear head on metres.
    """

    builder: Callable
    target_transform: str
    description: str


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, target_transform: str, description: str):
    """Decorator adding a builder `f(frames, frame_size, **options) -> keras.Model` to MODELS."""

    def wrap(builder):
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = ModelSpec(builder, target_transform, description)
        return builder

    return wrap


def model_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a ConfigError listing the known names."""
    _load_variants()
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def available_models() -> list[str]:
    _load_variants()
    return sorted(MODELS)


def build_model(name: str = "seed", frames: int = NUM_FRAMES, frame_size: int = 224, **options):
    """Build a registered model for clips of `frames` RGB frames of `frame_size`×`frame_size` pixels.

    Inputs of the returned keras.Model: (B, frames, frame_size, frame_size, 3) float32 in [0, 1].
    Outputs: (B, frames, 17, 3) float32, in the space of the model's target transform.
    """
    spec = model_spec(name)
    for key, value in (("frames", frames), ("frame_size", frame_size)):
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    accepted = inspect.signature(spec.builder).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        raise ConfigError(f"model {name!r} does not take option(s) {', '.join(unknown)}")
    return spec.builder(frames=frames, frame_size=frame_size, **options)


@register_model("seed", "minmax", "the report's model: conv 5x5x32, max-pool (1,2,2), LSTM(50), sigmoid head")
def build_seed(frames: int = NUM_FRAMES, frame_size: int = 224):
    """The report's dynamic regression model, layer for layer.

    At 224×224: conv (B,8,220,220,32) → pool (B,8,110,110,32) → reshape (B,8,387200) → LSTM (B,8,50)
    → dense+sigmoid (B,8,51) → reshape (B,8,17,3); 77,455,233 parameters, 77.45 M of them in the LSTM.
    """
    import keras
    from keras import layers

    if frame_size < SEED_KERNEL + 1:
        raise ConfigError(
            f"frame_size must be at least {SEED_KERNEL + 1} for the seed model, got {frame_size}")
    inputs = keras.Input((frames, frame_size, frame_size, 3), name="frames")
    x = layers.Conv3D(SEED_FILTERS, (1, SEED_KERNEL, SEED_KERNEL), activation="relu", name="conv")(inputs)
    x = layers.MaxPool3D(pool_size=SEED_POOL, strides=SEED_POOL, name="pool")(x)
    x = layers.Reshape((frames, -1), name="flatten")(x)
    x = layers.LSTM(SEED_LSTM_UNITS, return_sequences=True, name="lstm")(x)
    # The head stays float32 under mixed precision so the sigmoid saturates the same way.
    x = layers.Dense(NUM_JOINTS * 3, activation="sigmoid", dtype="float32", name="head")(x)
    outputs = layers.Reshape((frames, NUM_JOINTS, 3), dtype="float32", name="pose")(x)
    return keras.Model(inputs, outputs, name="seed")


def _load_variants() -> None:
    """Import the modules that register further models (kept apart so this file stays the seed's)."""
    import importlib.util

    if importlib.util.find_spec("pose_utils.variants") is not None:
        importlib.import_module("pose_utils.variants")
