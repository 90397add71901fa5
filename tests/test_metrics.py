import numpy as np
import pytest

from pose_utils import metrics as M


def _rotation(angle_deg, axis):
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@pytest.fixture
def poses():
    rng = np.random.default_rng(0)
    return rng.normal(scale=0.3, size=(3, 8, 17, 3))


def test_hand_computed_values():
    y = np.zeros((1, 17, 3))
    p = np.zeros((1, 17, 3))
    p[0, 0] = [3.0, 4.0, 0.0]  # one joint 5 units off
    assert M.mpjpe(y, p) == pytest.approx(5 / 17)
    assert M.mse_loss(y, p) == pytest.approx((9 + 16) / 51)
    per_joint = M.per_joint_mpjpe(y, p)
    assert per_joint.shape == (17,) and per_joint[0] == pytest.approx(5) and per_joint[1:].sum() == 0
    assert M.pck3d(y, p, threshold=1.0) == pytest.approx(16 / 17)
    # AUC over thresholds 0, 2.5, 5, 7.5, 10: the 5-unit joint counts only below 7.5 and 10.
    assert M.auc(y, p, max_threshold=10, steps=5) == pytest.approx((0 + 16 / 17 + 16 / 17 + 1 + 1) / 5)


def test_velocity_error_by_hand():
    y = np.zeros((2, 17, 3))
    p = np.zeros((2, 17, 3))
    p[1, :, 2] = 2.0  # every joint moves 2 along z between frame 0 and 1
    assert M.mean_velocity_error(y, p) == pytest.approx(2.0)


def test_p_mpjpe_invariant_to_similarity(poses):
    r = _rotation(37, axis=1) @ _rotation(-20, axis=0)
    moved = 1.7 * poses @ r.T + np.array([0.3, -1.0, 4.0])
    assert M.p_mpjpe(poses, moved) == pytest.approx(0, abs=1e-9)
    assert M.mpjpe(poses, moved) > 0.1


def test_p_mpjpe_does_not_undo_a_reflection(poses):
    mirrored = poses * np.array([-1, 1, 1])
    assert M.p_mpjpe(poses, mirrored) > 1e-3


def test_p_mpjpe_never_exceeds_mpjpe(poses):
    noisy = poses + np.random.default_rng(2).normal(scale=0.05, size=poses.shape)
    assert M.p_mpjpe(poses, noisy) <= M.mpjpe(poses, noisy) + 1e-12


def test_n_mpjpe_invariant_to_scale(poses):
    assert M.n_mpjpe(poses, 0.6 * poses) == pytest.approx(0, abs=1e-12)
    assert M.mpjpe(poses, 0.6 * poses) > 0.05


def test_velocity_error_invariant_to_constant_offset(poses):
    assert M.mean_velocity_error(poses, poses + [0.5, -0.2, 1.0]) == pytest.approx(0, abs=1e-12)


def test_shape_errors_are_clear(poses):
    with pytest.raises(ValueError, match="same shape"):
        M.mpjpe(poses, poses[:, :, :16])
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        M.mpjpe(np.zeros((5, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="2 frames"):
        M.mean_velocity_error(poses[:, :1], poses[:, :1])
    with pytest.raises(ValueError, match="threshold"):
        M.pck3d(poses, poses, threshold=-1)


def test_tensorflow_twins_equal_numpy(poses):
    from pose_utils import tf_metrics

    pred = poses + np.random.default_rng(3).normal(scale=0.1, size=poses.shape)
    assert float(tf_metrics.mse_loss(poses, pred)) == pytest.approx(M.mse_loss(poses, pred), rel=1e-5)
    assert float(tf_metrics.mpjpe(poses, pred)) == pytest.approx(M.mpjpe(poses, pred), rel=1e-5)


def test_per_clip_twins_are_what_training_weights(poses):
    """The per-clip forms the training step sums (weighted per clip) equal NumPy's, clip by clip."""
    from pose_utils import tf_metrics

    pred = poses + np.random.default_rng(4).normal(scale=0.1, size=poses.shape)
    mse = tf_metrics.mse_per_clip(poses, pred).numpy()
    err = tf_metrics.mpjpe_per_clip(poses, pred).numpy()
    smooth = tf_metrics.mpjpe_per_clip(poses, pred, smooth=True).numpy()
    assert mse.shape == err.shape == (len(poses),)
    for i in range(len(poses)):
        assert mse[i] == pytest.approx(M.mse_loss(poses[i:i + 1], pred[i:i + 1]), rel=1e-5)
        assert err[i] == pytest.approx(M.mpjpe(poses[i:i + 1], pred[i:i + 1]), rel=1e-5)
    np.testing.assert_allclose(smooth, err, atol=2e-6)


def test_the_training_step_reports_the_tested_metrics():
    """The engine's per-clip MSE and MPJPE come from tf_metrics (so a wrong metric fails these tests)."""
    import inspect

    from pose_utils.training import loop

    source = inspect.getsource(loop.Trainer)
    assert "tf_metrics.mse_per_clip" in source and "tf_metrics.mpjpe_per_clip" in source
    assert "tf.norm" not in source and "tf.square" not in source
