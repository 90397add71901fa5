"""The mean-pose baseline: the mean training pose predicted for every frame.

The bar a trained model must clear: a model below it has learnt something from the images. Pure NumPy,
metres; training saves the mean pose with every run (mean_pose.json) and evaluation scores it beside
the model with the same metrics.
"""

from __future__ import annotations

import numpy as np

from pose_utils.skeleton import NUM_JOINTS


def mean_pose(joints) -> np.ndarray:
    """The mean pose of `joints` (..., 17, 3) over every clip and frame: (17, 3) float64."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim < 2 or joints.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (..., {NUM_JOINTS}, 3), got {joints.shape}")
    return joints.reshape(-1, NUM_JOINTS, 3).mean(axis=0)


def mean_pose_prediction(mean_pose_m, shape) -> np.ndarray:
    """The baseline's prediction for poses of `shape` (..., 17, 3): `mean_pose_m` (17, 3) everywhere."""
    mean = np.asarray(mean_pose_m, dtype=np.float64)
    if mean.shape != (NUM_JOINTS, 3):
        raise ValueError(f"mean_pose_m must have shape ({NUM_JOINTS}, 3), got {mean.shape}")
    return np.broadcast_to(mean, tuple(shape))
