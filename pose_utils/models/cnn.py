"""The compact CNN models, each one small, explained step from the seed (see docs/models.md).

The seed (`pose_utils.models.seed.build_seed`) has two visible flaws:

1. Its head is `Dense(51, sigmoid)`: it can only output (0, 1), while root-relative coordinates are
   negative as often as positive. The report worked around it by squeezing the targets into (0, 1)
   ("minmax"); the sigmoid then saturates near the ends of each coordinate's range, exactly where the
   far-reaching limbs (wrists, ankles) live, and it cannot output the pelvis's exact 0.
2. Its LSTM reads the raw pooled activations of one 5×5 convolution: 110·110·32 = 387,200 numbers per
   frame at 224×224, so the LSTM holds 77.4 M of the model's 77.5 M weights. There is no spatial
   abstraction (one layer sees 5×5 pixels), the LSTM must learn where every body part is from single
   pixels, and on a CPU the Adam update over 77 M weights dominates each training step.

The steps, registered in `pose_utils.models.MODELS` (`build_model(name, ...)`); `seed_linear`, the
seed with a linear head on standardised targets, fixes flaw 1 only (`seed.py`):

- `cnn_frame`: a compact per-frame CNN backbone (strided 5×5 stem, three 3×3 conv blocks with batch
  normalisation and 2×2 max-pooling, 1×1 squeeze) flattened to a small feature vector, then a linear
  head per frame: fixes flaw 2 but ignores time (each frame on its own).
- `cnn_lstm`: the same backbone with an LSTM over the 8 frames: the seed's design with both flaws fixed.
- `cnn_tcn`: the same backbone with a residual temporal 1-D convolution (kernel 3) instead of the LSTM:
  every output frame sees its neighbours on both sides, where the LSTM sees only the past.

The CNN models see the frames at half resolution by default (`input_pool=2`: a quarter of the cost,
no measured loss of accuracy on our data) and take training-time augmentation options: `color_jitter`
(`ClipColorJitter`), `channel_shuffle` (`ClipChannelShuffle`), `zoom` and `shift` (`ClipZoom`); left/right
flips come from `TrainConfig.flip_augment`. `cnn_lstm` takes `bidirectional`.
`keypoint_head.keypoint_model(model)` adds a training-only 2-D keypoint head to a CNN model
(`TrainConfig.keypoint_loss`, docs/models.md).

Every builder takes (frames, frame_size, **options) and returns a keras.Model mapping
(B, frames, S, S, 3) float32 in [0, 1] to (B, frames, 17, 3) float32 in its target space. Apart from
the three augmentation layers (`layers.py`, registered with Keras), only stock Keras layers are used:
the models load with `keras.saving.load_model(..., safe_mode=True)`. The head and the final reshape
are float32 so they stay exact under mixed precision.
"""

from __future__ import annotations

from pose_utils.errors import ConfigError
from pose_utils.models.layers import ClipChannelShuffle, ClipColorJitter, ClipZoom
from pose_utils.models.seed import pose_head
from pose_utils.skeleton import NUM_FRAMES

# Backbone layout. From S×S input the stem (stride 2) and four 2×2 pools take the map to S/32 (7×7 at
# 224); the early stride is what keeps the first convolution cheap (1/4 of the seed's positions).
STEM_KERNEL = 5
STEM_STRIDE = 2
BLOCKS = 3  # 3×3 conv blocks after the stem, each doubling the channels and halving the map
DOWNSAMPLING = STEM_STRIDE * 2 ** (BLOCKS + 1)  # 32: total reduction of the map side (224 -> 7)
MIN_FRAME_SIZE = DOWNSAMPLING  # smaller frames would pool away to nothing


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _backbone(inputs, frames: int, frame_size: int, width: int, squeeze: int, features: int, dropout: float,
              input_pool: int, color_jitter: float, depth: int, zoom: float, shift: float,
              channel_shuffle: bool):
    """Per-frame CNN: (B, T, S, S, 3) → (B, T, features), the same weights for every frame.

    Convolutions are Conv3D with kernels one frame deep, i.e. 2-D convolutions applied to each frame
    (the seed's own trick; faster on CPU than TimeDistributed(Conv2D)). `input_pool` first averages
    p×p pixel blocks (the frames are read at 224 but seen at 224/p: a cheaper model, see docs/models.md).
    Shapes at S = 224, input_pool 1, width 16: stem (T,112,112,16) → pool (T,56,56,16)
    → block1 (T,28,28,32) → block2 (T,14,14,64) → block3 (T,7,7,128) → squeeze (T,7,7,squeeze)
    → flatten (T, 49·squeeze) → dense (T, features); with input_pool 2 every map is half as wide (3×3 at
    the end). Flattening (rather than global pooling) keeps *where* each feature fired, which a pose
    regressor needs.
    """
    from keras import layers

    if frame_size // input_pool < MIN_FRAME_SIZE:
        raise ConfigError(
            f"frame_size / input_pool must be at least {MIN_FRAME_SIZE} for the CNN models, got "
            f"{frame_size} / {input_pool}"
        )

    def conv_bn_relu(x, filters, kernel, strides, name):
        # No bias: batch normalisation's offset replaces it.
        x = layers.Conv3D(filters, (1, kernel, kernel), strides=(1, strides, strides), padding="same",
                          use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    x = inputs
    if input_pool > 1:
        x = layers.AveragePooling3D((1, input_pool, input_pool), name="input_pool")(x)
    # The augmentations come after the pooling, on a quarter of the pixels: a per-channel gain and
    # shift or a channel permutation commutes with averaging (up to the jitter's clipping to [0, 1]).
    if color_jitter:
        x = ClipColorJitter(color_jitter, name="color_jitter")(x)
    if channel_shuffle:
        x = ClipChannelShuffle(name="channel_shuffle")(x)
    if zoom or shift:
        # The zoom's parameters are an output nobody reads at inference; keypoint_model reads them.
        x, _ = ClipZoom(zoom, shift, return_params=True, name="zoom")(x)
    x = conv_bn_relu(x, width, STEM_KERNEL, STEM_STRIDE, "stem")
    x = layers.MaxPool3D((1, 2, 2), name="stem_pool")(x)
    for i in range(1, BLOCKS + 1):
        for k in range(1, depth + 1):
            x = conv_bn_relu(x, width * 2**i, 3, 1, f"block{i}" if k == 1 else f"block{i}_{k}")
        x = layers.MaxPool3D((1, 2, 2), name=f"block{i}_pool")(x)
    x = conv_bn_relu(x, squeeze, 1, 1, "squeeze")
    x = layers.TimeDistributed(layers.Flatten(), name="flatten")(x)
    x = layers.Dense(features, activation="relu", name="features")(x)
    if dropout:
        x = layers.Dropout(dropout, name="features_dropout")(x)
    return x


def _cnn_options(width, squeeze, features, dropout, input_pool, color_jitter, depth, zoom, shift,
                 channel_shuffle) -> dict:
    """Check the backbone options; returns them as keyword arguments for `_backbone`."""
    if not isinstance(channel_shuffle, bool):
        raise ConfigError(f"channel_shuffle must be true or false, got {channel_shuffle!r}")
    return {"width": _check_positive_int("width", width), "squeeze": _check_positive_int("squeeze", squeeze),
            "features": _check_positive_int("features", features),
            "dropout": _check_fraction("dropout", dropout),
            "input_pool": _check_positive_int("input_pool", input_pool),
            "color_jitter": _check_fraction("color_jitter", color_jitter),
            "depth": _check_positive_int("depth", depth), "zoom": _check_fraction("zoom", zoom),
            "shift": _check_fraction("shift", shift), "channel_shuffle": channel_shuffle}


# Options shared by the CNN models (see `_backbone`), with their defaults.
CNN_DEFAULTS = {"width": 16, "squeeze": 32, "features": 256, "dropout": 0.1, "input_pool": 2,
                "color_jitter": 0.0, "depth": 1, "zoom": 0.0, "shift": 0.0, "channel_shuffle": False}


def build_cnn_frame(frames: int = NUM_FRAMES, frame_size: int = 224, **options):
    """The CNN backbone and a linear head, each frame on its own: what the backbone alone achieves.

    Options (CNN_DEFAULTS): width (stem channels; blocks use 2×, 4×, 8×), squeeze (channels of the
    final 1×1 conv), features (per-frame vector size), dropout (on that vector, training only),
    input_pool (average p×p pixels first), color_jitter (ClipColorJitter strength, training only),
    channel_shuffle (ClipChannelShuffle), zoom and shift (ClipZoom), depth (conv layers per block).
    """
    import keras

    backbone = _cnn_options(**_with_defaults("cnn_frame", options))
    inputs = keras.Input((frames, frame_size, frame_size, 3), name="frames")
    x = _backbone(inputs, frames, frame_size, **backbone)
    return keras.Model(inputs, pose_head(x, frames), name="cnn_frame")


def build_cnn_lstm(frames: int = NUM_FRAMES, frame_size: int = 224, units: int = 128,
                   bidirectional: bool = False, **options):
    """CNN backbone → LSTM(units, return_sequences) → linear head. Options as `cnn_frame`, plus units and
    bidirectional (a second LSTM reads the clip backwards, so frame 0 also sees the frames after it)."""
    import keras
    from keras import layers

    backbone = _cnn_options(**_with_defaults("cnn_lstm", options))
    units = _check_positive_int("units", units)
    if not isinstance(bidirectional, bool):
        raise ConfigError(f"bidirectional must be true or false, got {bidirectional!r}")
    inputs = keras.Input((frames, frame_size, frame_size, 3), name="frames")
    x = _backbone(inputs, frames, frame_size, **backbone)
    lstm = layers.LSTM(units, return_sequences=True, name="lstm")
    x = layers.Bidirectional(lstm, name="bilstm")(x) if bidirectional else lstm(x)
    return keras.Model(inputs, pose_head(x, frames), name="cnn_lstm")


def build_cnn_tcn(frames: int = NUM_FRAMES, frame_size: int = 224, temporal_layers: int = 2, kernel: int = 3,
                  **options):
    """CNN backbone → `temporal_layers` residual Conv1D(features, kernel, "same") → linear head.

    Each temporal layer widens every frame's view by kernel - 1 frames (two layers of kernel 3: ±2 frames),
    looking both backwards and forwards. The residual sum keeps the per-frame features intact so a layer
    only has to learn a correction from the neighbours. Options as `cnn_frame`, plus temporal_layers, kernel.
    """
    import keras
    from keras import layers

    backbone = _cnn_options(**_with_defaults("cnn_tcn", options))
    temporal_layers = _check_positive_int("temporal_layers", temporal_layers)
    kernel = _check_positive_int("kernel", kernel)
    if kernel % 2 == 0:
        raise ConfigError(f"kernel must be odd so the window is centred on its frame, got {kernel}")
    inputs = keras.Input((frames, frame_size, frame_size, 3), name="frames")
    x = _backbone(inputs, frames, frame_size, **backbone)
    for i in range(1, temporal_layers + 1):
        y = layers.Conv1D(backbone["features"], kernel, padding="same", activation="relu",
                          name=f"temporal{i}")(x)
        x = layers.Add(name=f"temporal{i}_residual")([x, y])
    return keras.Model(inputs, pose_head(x, frames), name="cnn_tcn")


def _with_defaults(model: str, options: dict) -> dict:
    """CNN_DEFAULTS updated by `options`; ConfigError for an option no CNN model takes."""
    unknown = sorted(set(options) - set(CNN_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"model {model!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(CNN_DEFAULTS)} (and its own, see its docstring)"
        )
    return {**CNN_DEFAULTS, **options}
