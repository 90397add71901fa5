"""2-D keypoint labels: where each 3-D joint appears in the frame, and how augmentations move it.

A pose model trained on 3-D labels alone must discover by itself where each joint is in the image.
Telling its backbone directly ("the left wrist is here") is an extra, dense training signal that costs
nothing to label: our HDF5 data stores each clip's pelvis position (`root`) and camera intrinsics, so
the 2-D position of every joint is the projection of its 3-D label (`camera.project`). TrainConfig's
`keypoint_loss` uses them (docs/models.md).

Keypoints are in normalised image coordinates: (u - (W - 1) / 2) / (W / 2) and the same for v with H,
u and v in pixels with the centre of pixel (0, 0) at (0, 0) (our convention, `dataset.scene.principal_point`).
So -1 and 1 are the frame's outer edges, 0 its centre, whatever its size: the same labels fit a model
that sees the frames at 224 or pooled to 112 pixels.
"""

from __future__ import annotations

import numpy as np

from pose_utils.skeleton import H36M, NUM_JOINTS


def project_keypoints(joints, root, intrinsics, frame_shape) -> np.ndarray:
    """Normalised 2-D keypoints of root-relative 3-D labels.

    Inputs: joints (N, T, 17, 3) metres, root-relative, camera frame; root (N, T, 3) metres, the pelvis
    in the camera frame; intrinsics (N, 3, 3); frame_shape (H, W). Returns (N, T, 17, 2) float32.
    Raises ValueError for a joint behind the camera.
    """
    from pose_utils.camera import project

    joints = np.asarray(joints, np.float64)
    root = np.asarray(root, np.float64)
    n, t = joints.shape[:2]
    if joints.shape[2:] != (NUM_JOINTS, 3) or root.shape != (n, t, 3) or np.shape(intrinsics) != (n, 3, 3):
        raise ValueError(f"expected joints (N, T, 17, 3), root (N, T, 3), intrinsics (N, 3, 3); got "
                         f"{joints.shape}, {root.shape}, {np.shape(intrinsics)}")
    K = np.broadcast_to(np.asarray(intrinsics, np.float64)[:, None, None], (n, t, NUM_JOINTS, 3, 3))
    uv = project(joints + root[:, :, None, :], K)
    height, width = frame_shape
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    return ((uv - centre) / (np.array([width, height]) / 2)).astype(np.float32)


def flip_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """The keypoints of the left-right mirrored frame: u -> -u, left/right labels swapped.

    Inputs: keypoints (..., 17, 2) normalised. The twin of `skeleton.flip_left_right` for 3-D labels.
    """
    out = np.array(keypoints, copy=True)
    out[..., 0] *= -1
    return out[..., H36M.flip_permutation, :]


def roll_keypoints(keypoints, angles):
    """Keypoints of a camera rolled by angles[i] radians (`data.roll_clips`): turned about the frame centre.

    Inputs: keypoints (B, T, 17, 2) normalised, of square frames; angles (B,). Returns a tensor.
    """
    import tensorflow as tf

    c, s = tf.cos(angles)[:, None, None], tf.sin(angles)[:, None, None]
    u, v = keypoints[..., 0], keypoints[..., 1]
    return tf.stack([c * u - s * v, s * u + c * v], axis=-1)
