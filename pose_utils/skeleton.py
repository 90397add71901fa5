"""The Human3.6M 17-joint skeleton: names, parents, left/right, bones, and pose helpers.

Joint order is the one of the report's per-joint table (and of VideoPose3D):
0 Pelvis, 1 RHip, 2 RKnee, 3 RAnkle, 4 LHip, 5 LKnee, 6 LAnkle, 7 Spine, 8 Thorax,
9 Neck/Nose, 10 Head, 11 LShoulder, 12 LElbow, 13 LWrist, 14 RShoulder, 15 RElbow, 16 RWrist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_JOINTS = 17
NUM_FRAMES = 8  # frames per clip in the course data and the report's model
ROOT = 0  # the pelvis; labels are root-relative to it

JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "Spine", "Thorax",
    "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
LEFT: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
RIGHT: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
# (child, parent) for every joint but the root, in joint order.
BONES: tuple[tuple[int, int], ...] = tuple((j, p) for j, p in enumerate(PARENTS) if p >= 0)


@dataclass(frozen=True)
class Skeleton:
    """Metadata of a kinematic tree: one object to pass around instead of loose lists."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        return tuple((j, p) for j, p in enumerate(self.parents) if p >= 0)

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps every left joint with its right twin (centre joints stay)."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm


H36M = Skeleton(JOINT_NAMES, PARENTS, LEFT, RIGHT)


def _check_pose(poses: np.ndarray, name: str = "poses") -> np.ndarray:
    poses = np.asarray(poses)
    if poses.ndim < 2 or poses.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name} must have shape (..., {NUM_JOINTS}, 3), got {poses.shape}")
    return poses


def flip_left_right(poses: np.ndarray, axis: int = 0, skeleton: Skeleton = H36M) -> np.ndarray:
    """Mirror poses across the plane normal to coordinate `axis` and swap left/right joint labels.

    Inputs: poses of shape (..., 17, 3). With camera coordinates (x right) use axis=0, which matches
    flipping the image horizontally about a centred root.
    """
    poses = _check_pose(poses).copy()
    poses[..., axis] *= -1
    return poses[..., skeleton.flip_permutation, :]


def bone_lengths(poses: np.ndarray, skeleton: Skeleton = H36M) -> np.ndarray:
    """Length of every bone. Inputs: poses (..., 17, 3). Returns (..., 16) in the poses' unit."""
    poses = _check_pose(poses)
    child = [c for c, _ in skeleton.bones]
    parent = [p for _, p in skeleton.bones]
    return np.linalg.norm(poses[..., child, :] - poses[..., parent, :], axis=-1)


def root_relative(poses: np.ndarray, root: int = ROOT) -> np.ndarray:
    """Subtract the root joint so the pelvis sits at the origin. Inputs: poses (..., 17, 3)."""
    poses = _check_pose(poses)
    return poses - poses[..., root : root + 1, :]
