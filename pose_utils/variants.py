"""Models beyond the report, each one small, explained step from the seed (see docs/models.md).

The seed (`pose_utils.models.build_seed`) has two visible flaws:

1. Its head is `Dense(51, sigmoid)`: it can only output (0, 1), while root-relative coordinates are
   negative as often as positive. The report worked around it by squeezing the targets into (0, 1)
   ("minmax"); the sigmoid then saturates near the ends of each coordinate's range, exactly where the
   far-reaching limbs (wrists, ankles) live, and it cannot output the pelvis's exact 0.
2. Its LSTM reads the raw pooled activations of one 5×5 convolution: 110·110·32 = 387,200 numbers per
   frame at 224×224, so the LSTM holds 77.4 M of the model's 77.5 M weights. There is no spatial
   abstraction (one layer sees 5×5 pixels), the LSTM must learn where every body part is from single
   pixels, and on a CPU the Adam update over 77 M weights dominates each training step.

The steps, registered in `MODELS` (`build_model(name, ...)`):

- `seed_linear`: the same stack with a linear head on standardised targets: fixes flaw 1 only.
- `cnn_frame`: a compact per-frame CNN backbone (strided 5×5 stem, three 3×3 conv blocks with batch
  normalisation and 2×2 max-pooling, 1×1 squeeze) flattened to a small feature vector, then a linear
  head per frame: fixes flaw 2 but ignores time (each frame on its own).
- `cnn_lstm`: the same backbone with an LSTM over the 8 frames: the seed's design with both flaws fixed.
- `cnn_tcn`: the same backbone with a residual temporal 1-D convolution (kernel 3) instead of the LSTM:
  every output frame sees its neighbours on both sides, where the LSTM sees only the past.

The CNN models see the frames at half resolution by default (`input_pool=2`: a quarter of the cost,
no measured loss of accuracy on our data) and take training-time augmentation options: `color_jitter`
(`ClipColorJitter`), `channel_shuffle` (`ClipChannelShuffle`), `zoom` and `shift` (`ClipZoom`); left/right
flips come from `TrainConfig.flip_augment`. `cnn_lstm` takes `bidirectional`. `keypoint_model(model)`
adds a training-only 2-D keypoint head to a CNN model (`TrainConfig.keypoint_loss`, docs/models.md).

Every builder takes (frames, frame_size, **options) and returns a keras.Model mapping
(B, frames, S, S, 3) float32 in [0, 1] to (B, frames, 17, 3) float32 in its target space. Apart from
the three augmentation layers, registered with `keras.saving.register_keras_serializable` (so importing
this module is enough), only stock Keras layers are used: the models load with
`keras.saving.load_model(..., safe_mode=True)`. The head and the final reshape are float32 so they stay
exact under mixed precision.
"""

from __future__ import annotations

import keras

from .errors import ConfigError
from .models import SEED_FILTERS, SEED_KERNEL, SEED_LSTM_UNITS, SEED_POOL, register_model
from .skeleton import NUM_FRAMES, NUM_JOINTS

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


def _pose_head(x, frames: int):
    """Linear head: (B, T, F) → (B, T, 17, 3), float32 even under mixed precision."""
    from keras import layers

    x = layers.Dense(NUM_JOINTS * 3, dtype="float32", name="head")(x)
    return layers.Reshape((frames, NUM_JOINTS, 3), dtype="float32", name="pose")(x)


@register_model(
    "seed_linear", "standard",
    "the seed's stack (conv 5x5x32, pool, LSTM(50)) with a linear head on standardised targets",
)
def build_seed_linear(frames: int = NUM_FRAMES, frame_size: int = 224):
    """The report's model with its sigmoid head replaced by a linear one; nothing else changes.

    Targets are standardised per joint coordinate (`transforms.fit_transform("standard", ...)`), so
    negative root-relative coordinates and the pelvis's exact 0 are reachable and no output saturates.
    Same shapes and parameter count as the seed (77,455,233 at 224×224).
    """
    import keras
    from keras import layers

    if frame_size < SEED_KERNEL + 1:
        raise ConfigError(f"frame_size must be at least {SEED_KERNEL + 1} for seed_linear, got {frame_size}")
    inputs = keras.Input((frames, frame_size, frame_size, 3), name="frames")
    x = layers.Conv3D(SEED_FILTERS, (1, SEED_KERNEL, SEED_KERNEL), activation="relu", name="conv")(inputs)
    x = layers.MaxPool3D(pool_size=SEED_POOL, strides=SEED_POOL, name="pool")(x)
    x = layers.Reshape((frames, -1), name="flatten")(x)
    x = layers.LSTM(SEED_LSTM_UNITS, return_sequences=True, name="lstm")(x)
    return keras.Model(inputs, _pose_head(x, frames), name="seed_linear")


@keras.saving.register_keras_serializable(package="pose_utils")
class ClipColorJitter(keras.layers.Layer):
    """Training-time colour augmentation: one random per-channel gain and brightness shift per clip.

    Inputs and outputs (B, T, H, W, 3) in [0, 1]. With `strength` s, every clip's pixels become
    clip(x * g + b, 0, 1) with g ~ U(1 - s, 1 + s) per RGB channel and b ~ U(-s/2, s/2), the same for all
    8 frames (the clip stays one consistent video). Outside training it is the identity. It makes the
    clothes', skin's and background's exact colours useless as cues, so a model cannot memorise the
    training subjects by colour: the validation subjects wear other colours.
    """

    def __init__(self, strength: float = 0.2, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.strength = float(strength)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        from keras import ops

        if not training or self.strength == 0:
            return x
        batch = ops.shape(x)[0]
        s = self.strength
        gain = keras.random.uniform((batch, 1, 1, 1, 3), 1 - s, 1 + s, seed=self.seed_generator)
        shift = keras.random.uniform((batch, 1, 1, 1, 1), -s / 2, s / 2, seed=self.seed_generator)
        return ops.clip(x * ops.cast(gain, x.dtype) + ops.cast(shift, x.dtype), 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}


@keras.saving.register_keras_serializable(package="pose_utils")
class ClipZoom(keras.layers.Layer):
    """Training-time zoom and shift: one random scale and offset per clip, the same for all its frames.

    Inputs and outputs (B, T, H, W, C). Each clip is magnified by s ~ U(1 - zoom, 1 + zoom) about the
    frame centre and moved by up to `shift` of the frame side in each direction (edge pixels fill what
    comes into view); outside training it is the identity. The labels stay valid: magnifying about the
    principal point is a change of focal length, which leaves camera coordinates as they are, and a small
    shift is a small change of principal point. It stops a model from reading the pose off the exact
    position and size of the person in the crop, which the held-out subjects' other heights and cameras
    change.

    With `return_params` it also outputs each clip's (scale, x, y), (B, 3) float32: a point at p in the
    frame (normalised image coordinates, `pose_utils.keypoints`) is at scale * (p - (x, y)) in the zoomed
    view ((1, 0, 0) outside training). `keypoint_model` uses it to map 2-D keypoints back to the frame.
    """

    def __init__(self, zoom: float = 0.1, shift: float = 0.05, seed: int | None = None,
                 return_params: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.zoom, self.shift, self.seed = float(zoom), float(shift), seed
        self.return_params = bool(return_params)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        from keras import ops

        if not training or (self.zoom == 0 and self.shift == 0):
            if not self.return_params:
                return x
            ones = ops.ones((ops.shape(x)[0], 1), "float32")
            return x, ops.concatenate([ones, 0 * ones, 0 * ones], axis=1)
        shape = ops.shape(x)
        batch, frames, h, w = shape[0], shape[1], shape[2], shape[3]
        scale = keras.random.uniform((batch, 1), 1 - self.zoom, 1 + self.zoom, seed=self.seed_generator)
        offset = keras.random.uniform((batch, 2), -self.shift, self.shift, seed=self.seed_generator)
        inv = 1.0 / scale
        cx, cy = (ops.cast(w, "float32") - 1) / 2, (ops.cast(h, "float32") - 1) / 2
        # affine_transform maps each output pixel to the input pixel it reads (see keras.ops.image).
        tx = cx * (1 - inv) + offset[:, :1] * ops.cast(w, "float32")
        ty = cy * (1 - inv) + offset[:, 1:] * ops.cast(h, "float32")
        zero = ops.zeros_like(inv)
        transform = ops.concatenate([inv, zero, tx, zero, inv, ty, zero, zero], axis=1)  # (B, 8)
        transform = ops.reshape(ops.repeat(transform[:, None, :], frames, axis=1), (-1, 8))
        images = ops.reshape(x, (-1, h, w, shape[4]))
        out = ops.image.affine_transform(ops.cast(images, "float32"), transform, fill_mode="nearest")
        out = ops.cast(ops.reshape(out, shape), x.dtype)
        # The view's centre sits offset * side from the frame's: 2 * offset in normalised coordinates.
        return (out, ops.concatenate([scale, 2 * offset], axis=1)) if self.return_params else out

    def compute_output_shape(self, input_shape):
        return (input_shape, (input_shape[0], 3)) if self.return_params else input_shape

    def get_config(self):
        return {**super().get_config(), "zoom": self.zoom, "shift": self.shift, "seed": self.seed,
                "return_params": self.return_params}


@keras.saving.register_keras_serializable(package="pose_utils")
class ClipChannelShuffle(keras.layers.Layer):
    """Training-time colour permutation: each clip's RGB channels in one of the 6 orders, drawn per clip.

    Inputs and outputs (B, T, H, W, 3); identity outside training. Stronger than a colour jitter: a red
    shirt may come out green or blue, so no colour identifies a training subject, and the model has to
    rely on shape and shading, which the held-out subjects share.
    """

    PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        from keras import ops

        if not training:
            return x
        matrices = ops.convert_to_tensor(
            [[[1.0 if r == c else 0.0 for c in range(3)] for r in perm] for perm in self.PERMUTATIONS]
        )  # (6, 3, 3): output channel c reads input channel perm[c]
        pick = keras.random.randint((ops.shape(x)[0],), 0, len(self.PERMUTATIONS), seed=self.seed_generator)
        m = ops.cast(ops.take(matrices, pick, axis=0), x.dtype)  # (B, 3, 3)
        return ops.einsum("bthwi,boi->bthwo", x, m)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


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
    x = layers.Reshape((frames, -1), name="flatten")(x)
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


@register_model(
    "cnn_frame", "standard",
    "compact per-frame CNN backbone (stride-2 stem, 3 conv+BN+pool blocks), linear head; no time",
)
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
    return keras.Model(inputs, _pose_head(x, frames), name="cnn_frame")


@register_model(
    "cnn_lstm", "standard",
    "the CNN backbone, then an LSTM over the frames and a linear head (the seed's design, both flaws fixed)",
)
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
    return keras.Model(inputs, _pose_head(x, frames), name="cnn_lstm")


@register_model(
    "cnn_tcn", "standard",
    "the CNN backbone, then residual temporal convolutions (kernel 3, both directions) and a linear head",
)
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
    return keras.Model(inputs, _pose_head(x, frames), name="cnn_tcn")


@keras.saving.register_keras_serializable(package="pose_utils")
class SpatialSoftArgmax(keras.layers.Layer):
    """Score maps to 2-D points: the expected position under each map's softmax over its cells.

    Inputs (B, T, h, w, K) scores; outputs (B, T, K, 2) float32 (x, y) in normalised image coordinates
    (`pose_utils.keypoints`: -1 and 1 the frame's edges), cell centres at ((i + 0.5) / w) * 2 - 1.
    Differentiable everywhere, so a 2-D loss on the points trains the maps (and the backbone under them).
    """

    def call(self, maps):
        from keras import ops

        shape = ops.shape(maps)
        h, w, k = maps.shape[2], maps.shape[3], maps.shape[4]
        probs = ops.softmax(ops.reshape(ops.cast(maps, "float32"), (shape[0], shape[1], h * w, k)), axis=2)
        xs = (ops.arange(w, dtype="float32") + 0.5) / w * 2 - 1
        ys = (ops.arange(h, dtype="float32") + 0.5) / h * 2 - 1
        grid = ops.stack([ops.tile(xs, [h]), ops.repeat(ys, w)], axis=1)  # (h * w, 2), row-major cells
        return ops.einsum("btpk,pc->btkc", probs, grid)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[4], 2)


@keras.saving.register_keras_serializable(package="pose_utils")
class ViewToFrame(keras.layers.Layer):
    """Points found in a `ClipZoom` view, moved back to the frame: [points (B, T, K, 2), params (B, 3)]
    → points / scale + (x, y), (B, T, K, 2) float32, normalised image coordinates."""

    def call(self, inputs):
        from keras import ops

        points, params = inputs
        params = ops.cast(params, "float32")[:, None, None, :]
        return ops.cast(points, "float32") / params[..., :1] + params[..., 1:]

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


# The backbone block whose maps the keypoint head reads: 14x14 at 224 with input_pool 2, fine enough to
# place a joint within a few pixels and early enough that the 2-D signal shapes most of the backbone
# (measured on the small data: block1 and block3 gained less, docs/models.md).
KEYPOINT_BLOCK = 2


def keypoint_model(model):
    """A training model with a second output: 2-D keypoints read off the backbone (`keypoint_loss`).

    Inputs: a CNN model of this module (cnn_frame, cnn_lstm, cnn_tcn). Returns keras.Model(model.input,
    [model.output, keypoints (B, T, 17, 2)]), sharing every layer with `model`, plus a 1x1 convolution
    (17 score maps) on the last conv layer of block KEYPOINT_BLOCK and a `SpatialSoftArgmax`. Train this
    one and save `model`: the head is a training signal only, not part of the pose model. If the model
    zooms its input (`zoom`, `shift` options), the points are moved from the zoomed view back to the
    frame (`ViewToFrame`), so they compare with the frame's labels (`ClipStore.keypoints`) as they are.
    """
    from keras import layers

    prefix = f"block{KEYPOINT_BLOCK}"
    names = [ly.name for ly in model.layers
             if ly.name.endswith("_relu") and ly.name.split("_")[0] == prefix]
    if not names:
        raise ConfigError(
            f"keypoint_loss needs a CNN backbone (cnn_frame, cnn_lstm, cnn_tcn); model {model.name!r} has no "
            f"'{prefix}' block"
        )
    features = model.get_layer(names[-1]).output
    maps = layers.Conv3D(NUM_JOINTS, (1, 1, 1), dtype="float32", name="keypoint_maps")(features)
    points = SpatialSoftArgmax(dtype="float32", name="keypoints_in_view")(maps)
    zoom = next((ly for ly in model.layers if isinstance(ly, ClipZoom)), None)
    if zoom is not None:
        if not zoom.return_params:
            raise ConfigError(f"model {model.name!r} was built before its zoom layer reported its "
                              "parameters; build it anew for keypoint_loss")
        points = ViewToFrame(dtype="float32", name="keypoints")([points, zoom.output[1]])
    return keras.Model(model.input, [model.output, points], name=f"{model.name}_with_keypoints")


def _with_defaults(model: str, options: dict) -> dict:
    """CNN_DEFAULTS updated by `options`; ConfigError for an option no CNN model takes."""
    unknown = sorted(set(options) - set(CNN_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"model {model!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(CNN_DEFAULTS)} (and its own, see its docstring)"
        )
    return {**CNN_DEFAULTS, **options}
