"""The DeepMimic motion-capture clips shipped inside the `pybullet` wheel: parsing and sampling.

`pybullet_data/data/motions/humanoid3d_*.txt` holds 15 clips (walk, run, jump, ...) recorded in the CMU
and SFU motion-capture databases and retargeted by the DeepMimic project to the humanoid in
`pybullet_data/humanoid/humanoid.urdf`. Each file is JSON: `{"Loop": "wrap"|"none", "Frames": [[44
numbers], ...]}`. One key frame holds

    duration (s, until the next key frame; 0 on the last), root position (3, metres, y up),
    root rotation (w, x, y, z), chest (4), neck (4), right hip (4), right knee (1 angle, radians),
    right ankle (4), right shoulder (4), right elbow (1), left hip (4), left knee (1), left ankle (4),
    left shoulder (4), left elbow (1)

with every rotation local to its parent link. This module is pure NumPy (no pybullet client): it
turns a clip into a `Motion` and samples a `Pose` at any time, interpolating between key frames
(linear for positions and hinge angles, quaternion slerp for rotations). Clips marked "wrap" loop:
each further cycle starts where the previous one ended, turned by the heading change over a cycle,
so a looping walk keeps walking instead of jumping back to its start.

Quaternions here are (x, y, z, w), pybullet's order; the files store (w, x, y, z).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_utils.errors import DataError

FRAME_LENGTH = 44
# (name, joint index in humanoid.urdf loaded with URDF_MAINTAIN_LINK_ORDER, values per key frame)
JOINTS: tuple[tuple[str, int, int], ...] = (
    ("chest", 1, 4), ("neck", 2, 4),
    ("right_hip", 3, 4), ("right_knee", 4, 1), ("right_ankle", 5, 4),
    ("right_shoulder", 6, 4), ("right_elbow", 7, 1),
    ("left_hip", 9, 4), ("left_knee", 10, 1), ("left_ankle", 11, 4),
    ("left_shoulder", 12, 4), ("left_elbow", 13, 1),
)
JOINT_INDICES: tuple[int, ...] = tuple(j for _, j, _ in JOINTS)


# ----------------------------------------------------------------------------- quaternions (x, y, z, w)
def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternions. Inputs: q of shape (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b (apply b, then a). Inputs: (..., 4) each, (x, y, z, w)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ], axis=-1)


def quat_from_axis_angle(axis, angle: float) -> np.ndarray:
    """Rotation of `angle` radians about unit `axis` (3,). Returns (4,) (x, y, z, w)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    return np.append(axis * math.sin(angle / 2), math.cos(angle / 2))


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices. Inputs: q (..., 4) (x, y, z, w). Returns (..., 3, 3)."""
    x, y, z, w = np.moveaxis(quat_normalize(q), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def quat_slerp(a: np.ndarray, b: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical linear interpolation from a (fraction 0) to b (fraction 1) along the shorter arc.

    Inputs: a, b of shape (..., 4); fraction in [0, 1], a scalar or (..., 1). Returns unit quaternions
    (..., 4).
    """
    a, b = quat_normalize(a), quat_normalize(b)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)  # q and -q are the same rotation: take the short way round
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6  # nearly equal: slerp degenerates to lerp
    safe = np.where(near, 1.0, sin_theta)
    wa = np.where(near, 1.0 - fraction, np.sin((1.0 - fraction) * theta) / safe)
    wb = np.where(near, fraction, np.sin(fraction * theta) / safe)
    return quat_normalize(wa * a + wb * b)


def heading(q: np.ndarray) -> float:
    """Yaw (radians, about +y) of the direction the rotated x axis points in, projected on the floor."""
    forward = quat_to_matrix(q)[..., :, 0]
    return float(math.atan2(-forward[2], forward[0]))


# ----------------------------------------------------------------------------- poses and motions
@dataclass(frozen=True)
class Pose:
    """One humanoid pose, ready for pybullet.

    root_position: (3,) metres, world frame with y up. root_rotation: (4,) (x, y, z, w).
    joints: one array per entry of JOINTS, (4,) quaternion or (1,) hinge angle in radians.
    """

    root_position: np.ndarray
    root_rotation: np.ndarray
    joints: tuple[np.ndarray, ...]

    def transformed(self, yaw: float = 0.0, offset=(0.0, 0.0, 0.0), scale: float = 1.0) -> Pose:
        """This pose turned by `yaw` radians about the vertical axis through the world origin, its root
        position multiplied by `scale` (a body loaded with a larger globalScaling) and moved by `offset`."""
        q = quat_from_axis_angle((0.0, 1.0, 0.0), yaw)
        position = quat_to_matrix(q) @ (np.asarray(self.root_position) * scale) + np.asarray(offset)
        return Pose(position, quat_multiply(q, self.root_rotation), self.joints)

    def joint_targets(self) -> tuple[list[int], list[list[float]]]:
        """(joint indices, positions) for pybullet's resetJointStatesMultiDof."""
        return list(JOINT_INDICES), [list(map(float, v)) for v in self.joints]


@dataclass(frozen=True)
class Motion:
    """A parsed clip. Key frames: times (K,) seconds from 0; root_position (K, 3) metres (y up);
    root_rotation (K, 4); joints: per JOINTS entry an array (K, 4) or (K, 1)."""

    name: str
    loop: bool
    times: np.ndarray
    root_position: np.ndarray
    root_rotation: np.ndarray
    joints: tuple[np.ndarray, ...]

    @property
    def duration(self) -> float:
        """Seconds from the first key frame to the last (one cycle for a looping clip)."""
        return float(self.times[-1])

    @property
    def num_key_frames(self) -> int:
        return len(self.times)

    def start_range(self, span: float) -> tuple[float, float]:
        """Interval of start times for a clip lasting `span` seconds of motion time.

        A looping clip may start anywhere in its cycle; any other must end by its last key frame."""
        if self.loop:
            return 0.0, self.duration
        if span > self.duration:
            raise ValueError(f"motion {self.name!r} lasts {self.duration:.3f} s, shorter than {span:.3f} s")
        return 0.0, self.duration - span

    def _cycle_transform(self, cycles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, R, shift) carrying a pose of the first cycle into cycle `cycles` (any integer): each
        cycle begins at the previous one's last root position, turned by the heading change between
        the first and last key frame. position -> R @ position + shift, rotation -> q * rotation."""
        p0 = self.root_position[0] * (1.0, 0.0, 1.0)  # only the floor-plane part moves between cycles
        p1 = self.root_position[-1] * (1.0, 0.0, 1.0)
        turn = heading(self.root_rotation[-1]) - heading(self.root_rotation[0])
        q = quat_from_axis_angle((0.0, 1.0, 0.0), turn * cycles)
        R = quat_to_matrix(q)
        # One cycle: x -> Rt (x - p0) + p1. n cycles: x -> Rt^n x + sum_k Rt^k (p1 - Rt p0).
        step = quat_to_matrix(quat_from_axis_angle((0.0, 1.0, 0.0), turn))
        shift = np.zeros(3)
        if cycles > 0:
            d = p1 - step @ p0
            for _ in range(cycles):
                shift = step @ shift + d
        elif cycles < 0:
            d = p0 - step.T @ p1  # the inverse step: x -> Rt^T (x - p1) + p0
            for _ in range(-cycles):
                shift = step.T @ shift + d
        return q, R, shift

    def interpolate(self, times) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Root positions (T, 3), root rotations (T, 4) and joint values (per JOINTS entry (T, 4) or
        (T, 1)) at `times` (T,) seconds. Looping clips repeat; others clamp to their first/last key frame."""
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if not np.all(np.isfinite(t)):
            raise ValueError(f"times must be finite, got {t}")
        cycles = np.floor(t / self.duration).astype(int) if self.loop else np.zeros(len(t), int)
        t = np.clip(t - cycles * self.duration, 0.0, self.duration)
        k = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        gap = self.times[k + 1] - self.times[k]
        a = np.clip((t - self.times[k]) / gap, 0.0, 1.0)[:, None]
        position = (1 - a) * self.root_position[k] + a * self.root_position[k + 1]
        rotation = quat_slerp(self.root_rotation[k], self.root_rotation[k + 1], a)
        joints = tuple(quat_slerp(j[k], j[k + 1], a) if j.shape[1] == 4 else (1 - a) * j[k] + a * j[k + 1]
                       for j in self.joints)
        for n in np.unique(cycles[cycles != 0]):
            q, R, shift = self._cycle_transform(int(n))
            sel = cycles == n
            position[sel] = position[sel] @ R.T + shift
            rotation[sel] = quat_multiply(q, rotation[sel])
        return position, rotation, joints

    def sample(self, start: float, num_frames: int, fps: float, speed: float = 1.0) -> list[Pose]:
        """`num_frames` poses at video rate `fps` from motion time `start`, played `speed` times as fast."""
        if not (fps > 0 and speed > 0):
            raise ValueError(f"fps and speed must be positive, got fps={fps}, speed={speed}")
        position, rotation, joints = self.interpolate(start + speed * np.arange(num_frames) / fps)
        return [Pose(position[i], rotation[i], tuple(j[i] for j in joints)) for i in range(num_frames)]


def motions_dir() -> Path:
    """The folder holding humanoid3d_*.txt inside the installed pybullet_data package."""
    import pybullet_data  # only a data path: importing it starts no pybullet client

    return Path(pybullet_data.getDataPath()) / "data" / "motions"


def parse_motion(path: str | Path, name: str | None = None) -> Motion:
    """Read one DeepMimic motion file. Raises DataError naming the file if it breaks the format."""
    path = Path(path)
    name = name or path.stem.removeprefix("humanoid3d_")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        frames = np.asarray(doc["Frames"], dtype=np.float64)
        loop = doc.get("Loop", "none")
    except FileNotFoundError:
        raise DataError(f"{path}: motion file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not a DeepMimic motion file ({e.__class__.__name__}: {e})") from None
    if frames.ndim != 2 or frames.shape[1] != FRAME_LENGTH or len(frames) < 2:
        raise DataError(f"{path}: expected at least 2 key frames of {FRAME_LENGTH} values, got shape "
                        f"{frames.shape}")
    if loop not in ("wrap", "none"):
        raise DataError(f'{path}: "Loop" must be "wrap" or "none", got {loop!r}')
    durations = frames[:-1, 0]
    if not np.all(np.isfinite(frames)) or np.any(durations <= 0):
        raise DataError(f"{path}: key frame durations must be positive and all values finite")
    times = np.concatenate([[0.0], np.cumsum(durations)])

    def wxyz_to_xyzw(q):
        return quat_normalize(np.concatenate([q[:, 1:], q[:, :1]], axis=1))

    joints, col = [], 8
    for _, _, width in JOINTS:
        values = frames[:, col:col + width]
        joints.append(wxyz_to_xyzw(values) if width == 4 else values.copy())
        col += width
    return Motion(name, loop == "wrap", times, frames[:, 1:4].copy(), wxyz_to_xyzw(frames[:, 4:8]),
                  tuple(joints))


def motion_names(folder: str | Path | None = None) -> list[str]:
    """Sorted names of the humanoid clips ("backflip", ..., "walk")."""
    folder = Path(folder) if folder is not None else motions_dir()
    return sorted(p.stem.removeprefix("humanoid3d_") for p in folder.glob("humanoid3d_*.txt"))


def load_motions(folder: str | Path | None = None) -> dict[str, Motion]:
    """All humanoid clips in `folder` (default: pybullet's), keyed by name in sorted order."""
    folder = Path(folder) if folder is not None else motions_dir()
    names = motion_names(folder)
    if not names:
        raise DataError(f"{folder}: no humanoid3d_*.txt motion files (is pybullet installed?)")
    return {n: parse_motion(folder / f"humanoid3d_{n}.txt", n) for n in names}
