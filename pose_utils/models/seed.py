"""The report's model (`seed`), the model its code really trained (`seed_tanh`), and a linear-head twin
(`seed_linear`): one layer stack, three heads.

`build_model("seed")` is the report's "dynamic regression model". The report (TF 2.4) fed the 5-D clip
tensor straight into `Conv2D`; Keras 3 rejects that ("Kernel shape must have the same length as
input"). We write the same per-frame 5×5 convolution as `Conv3D(32, (1, 5, 5))`: a kernel one frame deep
applies the same 5×5×3×32 filter bank to every frame independently, exactly what the old Conv2D did, with
the same parameter count (2,432) and output shape. We chose it over `TimeDistributed(Conv2D)` because it
measured faster with oneDNN, which `pose_utils` turns on (docs/training.md), and it saves as one plain
layer. The LSTM is `layers.BatchedLSTM`: the stock `keras.layers.LSTM` with the same weights and function,
computed in an order that reads its 310 MB input kernel once per step instead of once per frame
(Keras's own LSTM layer with the same settings builds the same model, slower).
"""

from __future__ import annotations

from pose_utils.errors import ConfigError
from pose_utils.skeleton import NUM_FRAMES, NUM_JOINTS

# Seed architecture constants from the report.
SEED_FILTERS = 32
SEED_KERNEL = 5
SEED_POOL = (1, 2, 2)
SEED_LSTM_UNITS = 50



def seed_stack(frames: int, frame_size: int, head: str | None, name: str):
    """The report's layer stack with the head activation `head` ("sigmoid", "tanh" or None: linear).

    At 224×224: conv (B,8,220,220,32) → pool (B,8,110,110,32) → reshape (B,8,387200) → LSTM (B,8,50)
    → dense (B,8,51) → reshape (B,8,17,3); 77,455,233 parameters, 77.45 M of them in the LSTM.
    Returns a `keras.Model` from `inputs` to the head's output, named `name`.
    """
    import keras

    if frame_size < SEED_KERNEL + 1:
        what = "the seed model" if name == "seed" else name
        raise ConfigError(f"frame_size must be at least {SEED_KERNEL + 1} for {what}, got {frame_size}")
    inputs = keras.Input((frames, frame_size, frame_size, 3), name="frames")
    # Keras layers (keras.layers) and this package's BatchedLSTM (.layers; keras.layers.LSTM computes the
    # same, slower). Name the layers conv, pool, flatten, lstm: the notebooks and checks find them by name.
    # The head (Dense(51) named "head", then the (17, 3) reshape named "pose") is pose_head(x, frames, head).
    ### BEGIN SOLUTION (notebooks/02_model.ipynb)
    from keras import layers

    from pose_utils.models.layers import BatchedLSTM

    x = layers.Conv3D(SEED_FILTERS, (1, SEED_KERNEL, SEED_KERNEL), activation="relu", name="conv")(inputs)
    x = layers.MaxPool3D(pool_size=SEED_POOL, strides=SEED_POOL, name="pool")(x)
    x = layers.Reshape((frames, -1), name="flatten")(x)
    x = BatchedLSTM(SEED_LSTM_UNITS, return_sequences=True, name="lstm")(x)
    return keras.Model(inputs, pose_head(x, frames, head), name=name)
    ### END SOLUTION


def pose_head(x, frames: int, activation: str | None = None):
    """Dense(51) head: (B, T, F) → (B, T, 17, 3), float32 even under mixed precision, so a bounded head
    saturates the same way in every precision."""
    ### BEGIN SOLUTION (notebooks/02_model.ipynb)
    from keras import layers

    x = layers.Dense(NUM_JOINTS * 3, activation=activation, dtype="float32", name="head")(x)
    return layers.Reshape((frames, NUM_JOINTS, 3), dtype="float32", name="pose")(x)
    ### END SOLUTION


def build_seed(frames: int = NUM_FRAMES, frame_size: int = 224):
    """The report's dynamic regression model, layer for layer, as the report describes it: a sigmoid
    head, trained on min-max scaled targets (`targets.fit_transform("minmax", ...)`)."""
    return seed_stack(frames, frame_size, "sigmoid", "seed")


def build_seed_tanh(frames: int = NUM_FRAMES, frame_size: int = 224):
    """The report's model as its code ran: a tanh head on the raw labels in metres (identity transform).

    Same shapes and parameter count as the seed; outputs in (-1, 1) metres.
    """
    return seed_stack(frames, frame_size, "tanh", "seed_tanh")


def build_seed_linear(frames: int = NUM_FRAMES, frame_size: int = 224):
    """The report's model with its sigmoid head replaced by a linear one; nothing else changes.

    Targets are standardised per joint coordinate (`targets.fit_transform("standard", ...)`), so
    negative root-relative coordinates and the pelvis's exact 0 are reachable and no output saturates.
    Same shapes and parameter count as the seed.
    """
    return seed_stack(frames, frame_size, None, "seed_linear")
