"""pose_utils.gradcheck: central differences against exact gradients, NumPy's and TensorFlow's."""

import numpy as np
import pytest

from pose_utils import metrics
from pose_utils.gradcheck import numerical_gradient, relative_error


def test_central_differences_match_a_known_gradient_and_restore_x():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 2))
    before = x.copy()
    g = numerical_gradient(lambda v: float(np.sum(np.sin(v) * v)), x)
    assert relative_error(g, np.cos(before) * before + np.sin(before)) < 1e-8
    np.testing.assert_array_equal(x, before)


def test_the_loss_of_eq_2_has_the_gradient_tensorflow_computes():
    tf = pytest.importorskip("tensorflow")
    from pose_utils import tf_metrics

    rng = np.random.default_rng(1)
    y = rng.normal(0, 0.2, (2, 8, 17, 3))
    p = y + rng.normal(0, 0.05, y.shape)
    pred = tf.Variable(p)
    with tf.GradientTape() as recorded:
        loss = tf.reduce_mean(tf_metrics.mse_per_clip(tf.constant(y), pred))
    by_tape = recorded.gradient(loss, pred).numpy()
    by_hand = numerical_gradient(lambda v: metrics.mse_loss(y, v), p.copy())
    assert relative_error(by_tape, by_hand) < 1e-4  # float32 inside the twin


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(TypeError, match="float64 NumPy array"):
        numerical_gradient(lambda v: 0.0, [1.0, 2.0])
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: 0.0, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="h must be > 0"):
        numerical_gradient(lambda v: 0.0, np.zeros(3), h=0.0)
    with pytest.raises(ValueError, match="same shape"):
        relative_error(np.zeros(2), np.zeros(3))
