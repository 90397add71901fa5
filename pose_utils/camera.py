"""Pinhole camera helpers: pure NumPy functions with shape checks.

Conventions (Human3.6M's):
- Camera coordinates: x right, y down, z forward (the optical axis), metres.
- Pixel coordinates (u, v): u to the right, v down, the centre of the top-left pixel at (0, 0), so
  `image[round(v), round(u)]` is the pixel a point lands on (matplotlib's `imshow` draws it there too).
- Extrinsics (R, t) map world points into the camera: X_cam = R @ X_world + t.
- OpenGL eye coordinates (pybullet's view matrix) look down -z with y up; they are camera
  coordinates times diag(1, -1, -1).

Functions broadcast over leading axes; the intrinsics K may be (3, 3) or one (3, 3) per leading index,
e.g. joints (N, 8, 17, 3) with K (N, 3, 3).
"""

from __future__ import annotations

import numpy as np

GL_FROM_CAMERA = np.diag([1.0, -1.0, -1.0])  # its own inverse


def _points(x, name: str, width: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[-1] != width:
        raise ValueError(f"{name} must have shape (..., {width}), got {x.shape}")
    return x


def _matrix(m, name: str) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.ndim < 2 or m.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3), got {m.shape}")
    return m


def _expand(m: np.ndarray, points: np.ndarray, name: str, tail: int) -> np.ndarray:
    """Give per-item matrices/vectors (B..., *tail) trailing axes so they broadcast against points."""
    lead = m.shape[: m.ndim - tail]
    if lead and points.shape[: len(lead)] != lead:
        raise ValueError(f"{name} of shape {m.shape} does not match points of shape {points.shape}: its "
                         f"leading axes {lead} must equal the points' first axes")
    extra = points.ndim - 1 - len(lead)
    return m.reshape(lead + (1,) * extra + m.shape[m.ndim - tail:])


# ----------------------------------------------------------------------------- intrinsics
def intrinsics(f, cx, cy) -> np.ndarray:
    """Pinhole intrinsic matrix [[f, 0, cx], [0, f, cy], [0, 0, 1]] in pixels. Scalars give (3, 3);
    arrays broadcast to (..., 3, 3)."""
    f, cx, cy = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (f, cx, cy)))
    if np.any(f <= 0) or not np.all(np.isfinite(f)):
        raise ValueError(f"focal length must be positive and finite, got {f}")
    K = np.zeros(f.shape + (3, 3))
    K[..., 0, 0] = K[..., 1, 1] = f
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = cx, cy, 1.0
    return K


# ----------------------------------------------------------------------------- projection
def project(points_cam, K) -> np.ndarray:
    """Pixel coordinates of camera-frame points. Inputs: points_cam (..., 3) metres with z > 0;
    K (3, 3) or (B..., 3, 3) matching the points' first axes. Returns (..., 2) pixels (u, v)."""
    X = _points(points_cam, "points_cam", 3)
    K = _expand(_matrix(K, "K"), X, "K", 2)
    z = X[..., 2:3]
    if np.any(z <= 0):
        raise ValueError("points behind the camera (z <= 0) cannot be projected")
    uvw = np.einsum("...ij,...j->...i", K, X / z)
    return uvw[..., :2]


# ----------------------------------------------------------------------------- extrinsics
def world_to_camera(points_world, R, t) -> np.ndarray:
    """X_cam = R @ X_world + t. Inputs: points (..., 3); R (3, 3) or (B..., 3, 3); t (3,) or (B..., 3)."""
    X = _points(points_world, "points_world", 3)
    R = _expand(_matrix(R, "R"), X, "R", 2)
    t = _expand(_points(t, "t", 3), X, "t", 1)
    return np.einsum("...ij,...j->...i", R, X) + t


def look_at(eye, target, up=(0.0, 1.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Extrinsics (R (3, 3), t (3,)) of a camera at `eye` looking at `target` with world `up` pointing
    up in the image (camera y points down, away from it)."""
    eye, target, up = (_points(v, n, 3) for v, n in ((eye, "eye"), (target, "target"), (up, "up")))
    z = target - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("eye and target coincide")
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("viewing direction is parallel to the up vector")
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ eye


def camera_center(R, t) -> np.ndarray:
    """World position of the camera centre (the point `world_to_camera` maps to the origin)."""
    return -np.asarray(R, dtype=np.float64).T @ np.asarray(t, dtype=np.float64)


# ----------------------------------------------------------------------------- OpenGL (pybullet)
def gl_view_matrix(R, t) -> list[float]:
    """pybullet/OpenGL view matrix (16 floats, column-major) of the camera with extrinsics (R, t)."""
    M = np.eye(4)
    M[:3, :3] = GL_FROM_CAMERA @ _matrix(R, "R")
    M[:3, 3] = GL_FROM_CAMERA @ _points(t, "t", 3)
    return [float(v) for v in M.T.reshape(-1)]
