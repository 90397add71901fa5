"""The custom Keras layers: training-time clip augmentation and the 2-D keypoint head's read-out.

Registered with `keras.saving.register_keras_serializable`, so importing this module is what a saved
model that uses them needs to load (`models.register_layers()`, safe mode).
"""

from __future__ import annotations

import keras


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


@keras.saving.register_keras_serializable(package="pose_utils")
class BatchedLSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` whose input projection covers every frame in one matrix product.

    Keras's generic RNN loop multiplies each frame by the input kernel on its own, so the seed's
    387,200 x 200 kernel is read once per frame forward and its gradient is accumulated once per frame
    backward: memory traffic, not arithmetic, bounds the step. Here (B*T, F) @ (F, 4u) is one product
    before the recurrence, which then only multiplies the small recurrent kernel. The weights (names,
    shapes, initialisers) and the function are those of the stock layer; where the stock layer would
    run differently (a GPU's cuDNN kernel, dropout, masks, reversed or unrolled sequences) it does.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        import tensorflow as tf
        from keras import ops

        simple = (not self.dropout and not self.recurrent_dropout and not self.go_backwards and mask is None
                  and not tf.config.list_logical_devices("GPU"))
        if not simple:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        from pose_utils.models.recurrence import lstm_recurrence

        cell = self.cell
        kernel = ops.cast(cell.kernel, sequences.dtype)
        recurrent = ops.cast(cell.recurrent_kernel, sequences.dtype)
        projected = ops.matmul(sequences, kernel)
        if cell.use_bias:
            projected = projected + ops.cast(cell.bias, sequences.dtype)
        h, c = initial_state
        # the recurrence itself: models/recurrence.py (the frame count is static, 8)
        outputs, h, c = lstm_recurrence(projected, recurrent, h, c, activation=cell.activation,
                                        recurrent_activation=cell.recurrent_activation)
        return h, outputs, [h, c]
