"""Streaming a split into TensorFlow (`tf_dataset`), with the per-epoch randomness as pure functions of
(seed, epoch) so that a resumed run sees what an uninterrupted one would have seen.
"""

from __future__ import annotations

import numpy as np

from pose_utils.errors import ConfigError
from pose_utils.keypoints import flip_keypoints, roll_keypoints
from pose_utils.skeleton import NUM_JOINTS, flip_left_right

# tf_dataset's read-ahead: at most READ_PARALLELISM batches are read at once, and the prefetch buffer
# holds up to PREFETCH_BYTES of float32 batches (1 to MAX_PREFETCH of them). tf.data.AUTOTUNE would
# size the buffer from a share of the machine's RAM, so memory would grow with the batch and the frames.
READ_PARALLELISM = 2
PREFETCH_BYTES = 256 * 1024**2
MAX_PREFETCH = 4


def subset(n: int, limit: int | None) -> np.ndarray:
    """`limit` clip indices spread evenly over 0..n-1 (all of them if limit is None or >= n).

    Spread rather than the first ones, so a small subset still sees every subject, action and camera.
    """
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _seed_sequence(seed: int, epoch: int, stream: int) -> np.random.SeedSequence:
    # Negative seeds are valid in the CLI; SeedSequence wants non-negative entropy words.
    return np.random.SeedSequence([int(seed) % 2**64, int(epoch) % 2**64, stream])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of clips 0..n-1 for one epoch: a pure function of (n, seed, epoch).

    A run resumed at epoch e sees exactly the order an uninterrupted run would have seen.
    """
    return np.random.default_rng(_seed_sequence(seed, epoch, 0)).permutation(n)


def flip_mask(n: int, seed: int, epoch: int) -> np.ndarray:
    """Which of the n clips `tf_dataset(flip_augment=True)` mirrors in this epoch: (n,) bool, about half."""
    return np.random.default_rng(_seed_sequence(seed, epoch, 1)).random(n) < 0.5


def roll_angles(n: int, seed: int, epoch: int, max_degrees: float) -> np.ndarray:
    """The in-plane turn of each of the n clips for `tf_dataset(roll_augment=max_degrees)` in this epoch:
    (n,) float32 radians, uniform in [-max_degrees, max_degrees] (all 0 when max_degrees is 0)."""
    rng = np.random.default_rng(_seed_sequence(seed, epoch, 2))
    return np.deg2rad(rng.uniform(-max_degrees, max_degrees, n)).astype(np.float32)


def roll_clips(frames, joints, angles):
    """Turn each clip's camera about its optical axis by angles[i] radians: exact for both inputs.

    Inputs: frames (B, T, H, W, C) float32, joints (B, T, 17, 3) metres in camera coordinates, angles (B,).
    A camera rolled by a turns camera coordinates (x, y) by a about the optical axis z, and the image by
    a about the principal point, the frame centre in our data (pixels brought into view from beyond the
    edge repeat the edge). Returns both, turned, as TensorFlow tensors.
    """
    import tensorflow as tf

    shape = tf.shape(frames)
    b, t, h, w = shape[0], shape[1], shape[2], shape[3]
    cos, sin = tf.cos(angles), tf.sin(angles)
    cx, cy = (tf.cast(w, tf.float32) - 1) / 2, (tf.cast(h, tf.float32) - 1) / 2
    # Output pixel p reads the input at R(-a)(p - c) + c (the transform maps output to input points).
    zero = tf.zeros_like(cos)
    transform = tf.stack([cos, sin, cx - cos * cx - sin * cy,
                          -sin, cos, cy + sin * cx - cos * cy, zero, zero], axis=1)  # (B, 8)
    transform = tf.reshape(tf.repeat(transform[:, None], t, axis=1), [-1, 8])
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.reshape(frames, tf.concat([[b * t], shape[2:]], 0)), transforms=transform,
        output_shape=tf.stack([h, w]), fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    x, y = joints[..., 0], joints[..., 1]
    c, s = cos[:, None, None], sin[:, None, None]
    turned = tf.stack([c * x - s * y, s * x + c * y, joints[..., 2]], axis=-1)
    return tf.reshape(images, shape), turned


def _check_indices(indices, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"indices must be a 1-D array of clip numbers, got {idx.shape} {idx.dtype}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must be in [0, {n}), got {idx.min()}..{idx.max()}")
    if len(np.unique(idx)) != len(idx):
        raise ValueError("indices contain repeats; every clip must appear at most once per epoch")
    return idx


def tf_dataset(store, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
               indices=None, drop_remainder: bool = False, flip_augment: bool = False,
               target_transform=None, prefetch="auto", roll_augment: float = 0.0, keypoints: bool = False):
    """One epoch of (frames, joints) batches, or (frames, joints, keypoints) with `keypoints`, from disk.

    Yields frames float32 (B, 8, H, W, 3) in [0, 1] (uint8 / 255, done in the graph) and joints float32
    (B, 8, 17, 3): metres, or `target_transform.forward` of them. Every clip of `indices` (default: all)
    appears exactly once; with `shuffle` the order is `epoch_order(seed, epoch)`. With `flip_augment`,
    the clips of `flip_mask(seed, epoch)` are mirrored: frames flipped horizontally, joints x -> -x with
    left/right labels swapped (`skeleton.flip_left_right`); exact when the camera's principal point is
    the image centre (see docs/data.md). With `roll_augment` = d > 0, every clip is also turned in the
    image plane by `roll_angles(seed, epoch, d)` with its labels (`roll_clips`): a camera roll, exact for
    the same reason. `keypoints`: also yield the 2-D labels (B, 8, 17, 2) float32
    (`ClipStore.keypoints`, normalised image coordinates), moved by every augmentation with the pixels.
    Build a new dataset per epoch: only indices are prepared.

    Each batch of indices is read from the file in one `tf.numpy_function` call (sorted, see
    `ClipStore.read_frames`), READ_PARALLELISM batches at once (1 for batches over 128 MiB as float32).
    prefetch: "auto" buffers 1 to MAX_PREFETCH batches within PREFETCH_BYTES; an int (or
    tf.data.AUTOTUNE) is passed to `Dataset.prefetch`; None or 0 for no buffer. Memory is a few batches,
    whatever the size of the dataset.
    """
    import tensorflow as tf

    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(store)
    order = np.arange(n, dtype=np.int64) if indices is None else _check_indices(indices, n)
    if shuffle:
        order = order[epoch_order(len(order), seed, epoch)]
    flips = flip_mask(n, seed, epoch)[order] if flip_augment else np.zeros(len(order), bool)
    angles = roll_angles(n, seed, epoch, roll_augment)[order]
    keypoints_all = store.keypoints if keypoints else None  # DataError now, not inside the pipeline
    joints_all = store.joints
    height, width = store.frame_shape
    frames_spec = (batch_size if drop_remainder else None, store.num_frames, height, width, 3)
    joints_spec = (batch_size if drop_remainder else None, store.num_frames, NUM_JOINTS, 3)

    def read(idx: np.ndarray, flip: np.ndarray):
        frames = store.read_frames(idx)
        joints = joints_all[idx]
        kp = keypoints_all[idx] if keypoints else np.zeros((len(idx), 0), np.float32)
        if flip.any():
            frames[flip] = frames[flip][:, :, :, ::-1, :]  # mirror along the width axis
            joints[flip] = flip_left_right(joints[flip]).astype(np.float32)
            if keypoints:
                kp[flip] = flip_keypoints(kp[flip])
        return frames, joints, kp

    def load(idx, flip, angle):
        frames, joints, kp = tf.numpy_function(read, [idx, flip], [tf.uint8, tf.float32, tf.float32],
                                               name="read_clips")
        frames = tf.ensure_shape(frames, frames_spec)
        joints = tf.ensure_shape(joints, joints_spec)
        frames = tf.cast(frames, tf.float32) / 255.0
        if keypoints:
            kp = tf.ensure_shape(kp, joints_spec[:3] + (2,))
        if roll_augment:
            frames, joints = roll_clips(frames, joints, angle)
            if keypoints:
                kp = roll_keypoints(kp, angle)
        if target_transform is not None:
            joints = tf.cast(target_transform.forward(joints), tf.float32)
        return (frames, joints, kp) if keypoints else (frames, joints)

    ds = tf.data.Dataset.from_tensor_slices((order, flips, angles))  # indices only; frames stay on disk
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    batch_bytes = batch_size * store.num_frames * height * width * 3 * 4  # as float32
    if prefetch == "auto":
        prefetch = int(np.clip(PREFETCH_BYTES // batch_bytes, 1, MAX_PREFETCH))
    parallel = READ_PARALLELISM if batch_bytes * READ_PARALLELISM <= PREFETCH_BYTES else 1
    ds = ds.map(load, num_parallel_calls=parallel, deterministic=True)
    if prefetch:
        ds = ds.prefetch(prefetch)
    # No tf.data autotuning: the parallelism and buffer above are fixed, and the autotuner's thread made
    # the end of an epoch wait. Deleting the iterator joins that thread, which sleeps through its
    # optimisation period (tens of seconds once a run is long) before it sees the cancellation: 30-35 s
    # lost in about half the epochs of a 224x224 run (docs/training.md, "Where the time goes").
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
