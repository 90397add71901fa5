"""TensorFlow twins of `pose_utils.metrics` used inside the compiled training step.

Inputs: y_true and y_pred tensors of shape (..., 17, 3) in one unit. Tested equal to the NumPy ones.
"""

from __future__ import annotations

import tensorflow as tf


def mse_loss(y_true, y_pred) -> tf.Tensor:
    """Report eq. (2): squared error averaged over clips, frames, joints and coordinates."""
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    return tf.reduce_mean(tf.square(y_true - y_pred))


def mpjpe(y_true, y_pred) -> tf.Tensor:
    """Report eq. (3), Protocol 1: mean Euclidean joint error over clips, frames and joints."""
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    return tf.reduce_mean(tf.norm(y_pred - y_true, axis=-1))
