"""TensorFlow twins of `pose_utils.metrics`: the ones the training step computes (tested equal to NumPy).

Inputs: y_true and y_pred tensors of shape (B, T, 17, 3) (or (B, T, 17, 2) for 2-D keypoints) in one
unit. The per-clip forms return (B,): the engine weights them per clip, so a padded clip counts zero and
replicas add up to the single-device loss.
"""

from __future__ import annotations

import tensorflow as tf

# Under the square root of the smooth distance: tf.norm has no gradient at a zero error, which the pelvis
# (0 in every root-relative label, and in every prediction of a standardised head) always has.
SMOOTH_EPSILON = 1e-12


def _pair(y_true, y_pred):
    return tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)


def mse_per_clip(y_true, y_pred) -> tf.Tensor:
    """Report eq. (2) per clip: squared error averaged over frames, joints and coordinates, (B,)."""
    y_true, y_pred = _pair(y_true, y_pred)
    ### BEGIN SOLUTION (notebooks/03_training.ipynb)
    return tf.reduce_mean(tf.square(y_pred - y_true), axis=[1, 2, 3])
    ### END SOLUTION


def mpjpe_per_clip(y_true, y_pred, smooth: bool = False) -> tf.Tensor:
    """Report eq. (3) per clip: Euclidean joint error averaged over frames and joints, (B,).

    smooth: sqrt(|d|² + SMOOTH_EPSILON) instead of |d|, so the gradient is finite at d = 0 (for training
    on the metric itself); the value differs from |d| by at most 1e-6 of the unit.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    ### BEGIN SOLUTION (notebooks/03_training.ipynb)
    squared = tf.reduce_sum(tf.square(y_pred - y_true), axis=-1)  # (B, T, 17)
    distance = tf.sqrt(squared + SMOOTH_EPSILON) if smooth else tf.sqrt(squared)
    return tf.reduce_mean(distance, axis=[1, 2])
    ### END SOLUTION


def mse_loss(y_true, y_pred) -> tf.Tensor:
    """Report eq. (2): squared error averaged over clips, frames, joints and coordinates."""
    return tf.reduce_mean(mse_per_clip(y_true, y_pred))


def mpjpe(y_true, y_pred) -> tf.Tensor:
    """Report eq. (3), Protocol 1: mean Euclidean joint error over clips, frames and joints."""
    return tf.reduce_mean(mpjpe_per_clip(y_true, y_pred))
