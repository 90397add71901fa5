"""Adam's update in one pass over each variable: TensorFlow's fused `ResourceApplyAdam` kernel behind
Keras's Adam.

Keras 3's `Adam.update_step` is a chain of elementwise operations (two moment updates, a square root, a
division, the subtraction), each a pass over the weights; over the seed's 77 million weights the update is
memory-bound and those passes are most of its time. TensorFlow's kernel reads the weight, the gradient and
both moments once and writes the three back: the least an Adam update can move. It computes the same
formula (m += (g - m)(1 - b1); v += (g² - v)(1 - b2); w -= lr·sqrt(1 - b2^t)/(1 - b1^t)·m / (sqrt(v) + eps)),
so the numbers agree with Keras's to float32 rounding (tests/test_train.py).

`FusedAdam` is a `keras.optimizers.Adam`: same variables, same checkpoint entries, same `apply`, so a
student's `train_step` (which calls `optimizer.apply`) runs unchanged. The engine uses it where the kernel
serves (`fused_adam_serves`); elsewhere it keeps Keras's (docs/training.md).
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="pose_utils")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose per-variable update is TensorFlow's fused kernel (see the module doc).
    AMSGrad and sparse gradients take Keras's own update."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices) or not hasattr(variable, "handle"):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle, beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype), use_locking=False)


def fused_adam_serves(precision: str, replicas: int) -> bool:
    """Whether the engine uses FusedAdam: float32 weights on one replica. Mixed precision keeps Keras's
    Adam inside its LossScaleOptimizer, and so does a strategy with several replicas (its per-replica
    variable updates go through Keras's own code path)."""
    return precision == "float32" and replicas == 1
