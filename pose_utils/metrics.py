"""Pose metrics as small pure NumPy functions.

Every function takes `(y_true, y_pred)` arrays of the same shape `(..., 17, 3)` in one unit and
returns that unit (or a fraction, for PCK/AUC). We keep metres inside and multiply by 1000 when
reporting millimetres. TensorFlow twins used in training live in `pose_utils.tf_metrics`.
"""

from __future__ import annotations

import numpy as np

from pose_utils.skeleton import NUM_JOINTS


def _check_pair(y_true, y_pred, min_rank: int = 2) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    if y_true.ndim < min_rank or y_true.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(
            f"poses must have shape (..., {NUM_JOINTS}, 3) with rank >= {min_rank}, got {y_true.shape}"
        )
    return y_true, y_pred


def mse_loss(y_true, y_pred) -> float:
    """Report eq. (2): squared error averaged over clips, frames, joints and the 3 coordinates."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    ### BEGIN SOLUTION (notebooks/02_model.ipynb)
    return float(np.mean((y_true - y_pred) ** 2))
    ### END SOLUTION


def joint_errors(y_true, y_pred) -> np.ndarray:
    """Euclidean distance per joint. Inputs (..., 17, 3); returns (..., 17)."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    ### BEGIN SOLUTION (notebooks/02_model.ipynb)
    return np.sqrt(np.sum((y_pred - y_true) ** 2, axis=-1))
    ### END SOLUTION


def mpjpe(y_true, y_pred) -> float:
    """Report eq. (3), Protocol 1: mean Euclidean joint error over clips, frames and joints."""
    # joint_errors(y_true, y_pred): (..., 17)
    ### BEGIN SOLUTION (notebooks/02_model.ipynb)
    return float(np.mean(joint_errors(y_true, y_pred)))
    ### END SOLUTION


def per_joint_mpjpe(y_true, y_pred) -> np.ndarray:
    """MPJPE of each of the 17 joints (the report's table). Inputs (..., 17, 3); returns (17,)."""
    # joint_errors(y_true, y_pred): (..., 17)
    ### BEGIN SOLUTION (notebooks/02_model.ipynb)
    return joint_errors(y_true, y_pred).reshape(-1, NUM_JOINTS).mean(axis=0)
    ### END SOLUTION


def procrustes_align(y_true, y_pred) -> np.ndarray:
    """Align each predicted pose to its true pose by the best similarity transform.

    Scale, rotation and translation are fitted per pose (least squares, Umeyama); a reflection is
    never allowed, so a mirrored prediction keeps its error. Inputs (..., 17, 3); returns y_pred aligned.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    ### BEGIN SOLUTION (notebooks/02_model.ipynb)
    mu_true = y_true.mean(axis=-2, keepdims=True)
    mu_pred = y_pred.mean(axis=-2, keepdims=True)
    x0, y0 = y_true - mu_true, y_pred - mu_pred
    norm_x = np.sqrt(np.sum(x0**2, axis=(-2, -1), keepdims=True))
    norm_y = np.sqrt(np.sum(y0**2, axis=(-2, -1), keepdims=True))
    # A degenerate (all-joints-equal) pose has no orientation; keep it centred and unscaled.
    norm_x = np.where(norm_x > 0, norm_x, 1.0)
    norm_y = np.where(norm_y > 0, norm_y, 1.0)
    x0, y0 = x0 / norm_x, y0 / norm_y
    h = np.swapaxes(x0, -1, -2) @ y0  # (..., 3, 3)
    u, s, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    r = v @ np.swapaxes(u, -1, -2)
    # Fix a reflection: flip the axis of the smallest singular value so det(r) = +1.
    sign = np.sign(np.linalg.det(r))[..., None]
    sign = np.where(sign == 0, 1.0, sign)
    v[..., :, -1] *= sign
    s[..., -1] *= sign[..., 0]
    r = v @ np.swapaxes(u, -1, -2)
    trace = s.sum(axis=-1)[..., None, None]
    scale = trace * norm_x / norm_y
    return scale * (y_pred - mu_pred) @ r + mu_true
    ### END SOLUTION


def p_mpjpe(y_true, y_pred) -> float:
    """Protocol 2: MPJPE after per-pose similarity Procrustes alignment (scale, rotation, translation)."""
    return mpjpe(y_true, procrustes_align(y_true, y_pred))


def n_mpjpe(y_true, y_pred) -> float:
    """N-MPJPE: MPJPE after scaling each predicted pose by its least-squares scale factor."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    dot_pred = np.sum(y_pred * y_pred, axis=(-2, -1), keepdims=True)
    dot_cross = np.sum(y_true * y_pred, axis=(-2, -1), keepdims=True)
    scale = np.where(dot_pred > 0, dot_cross / np.where(dot_pred > 0, dot_pred, 1.0), 1.0)
    return mpjpe(y_true, scale * y_pred)


def mean_velocity_error(y_true, y_pred) -> float:
    """MPJVE: mean error of the per-frame joint velocities (first difference along the frame axis).

    Inputs (..., F, 17, 3) with F >= 2 frames; the result is in the input unit per frame.
    """
    y_true, y_pred = _check_pair(y_true, y_pred, min_rank=3)
    if y_true.shape[-3] < 2:
        raise ValueError(f"need at least 2 frames along axis -3 for velocities, got shape {y_true.shape}")
    v_true = np.diff(y_true, axis=-3)
    v_pred = np.diff(y_pred, axis=-3)
    return float(np.mean(np.linalg.norm(v_pred - v_true, axis=-1)))


def pck3d(y_true, y_pred, threshold: float) -> float:
    """3D PCK: fraction of joints whose error is below `threshold` (same unit as the poses)."""
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    return float(np.mean(joint_errors(y_true, y_pred) < threshold))


def auc(y_true, y_pred, max_threshold: float, steps: int = 31) -> float:
    """Area under the PCK curve: PCK averaged over `steps` thresholds from 0 to `max_threshold`.

    With millimetres, max_threshold=150 and steps=31 gives the usual 0, 5, ..., 150 mm protocol.
    """
    if not max_threshold > 0 or steps < 2:
        raise ValueError(f"need max_threshold > 0 and steps >= 2, got {max_threshold} and {steps}")
    errors = joint_errors(y_true, y_pred)
    thresholds = np.linspace(0.0, max_threshold, steps)
    return float(np.mean([np.mean(errors < t) for t in thresholds]))
