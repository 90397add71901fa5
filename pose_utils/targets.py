"""Target transforms: an exactly invertible per-coordinate affine map of the pose labels.

A model's head decides which space its targets live in. The report's sigmoid head can only output
(0, 1), so its targets are squeezed into [margin, 1 - margin] per joint coordinate ("minmax"); a linear
head may learn standardised targets ("standard") or plain metres ("identity"). Every kind is the same
affine map, fitted on the training split and saved with a run:

    forward(y) = (y - center) / scale        inverse(z) = z * scale + center

with `center` and `scale` of shape (17, 3), in the labels' unit (metres). Metrics are always computed
after `inverse`, in millimetres of the original space.

The same object works on NumPy arrays and on TensorFlow tensors (inside the compiled training step
and inside `tf.data`): NumPy inputs are computed in float64 so that inverse(forward(y)) returns y to
about 1e-12 m; tensors are computed in their own float dtype. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from pose_utils.errors import ConfigError, DataError, PoseUtilsError
from pose_utils.fileio import read_json, write_json
from pose_utils.skeleton import NUM_JOINTS

KINDS = ("minmax", "standard", "identity")
FORMAT_VERSION = 1
DEFAULT_MARGIN = 0.1
# Smallest range (minmax) or standard deviation (standard) a coordinate may have, in the labels' unit:
# 1 mm for metres. The pelvis of root-relative labels is always 0; without a floor it would divide by 0.
DEFAULT_MIN_SCALE = 1e-3


@dataclass(frozen=True, eq=False)
class TargetTransform:
    """z = (y - center) / scale per joint coordinate; center and scale are (17, 3) float64, scale > 0.

    Use `fit_transform` to build one from training labels, `transform_from_dict` / `load_transform` to
    restore a saved one. `params` records how it was fitted (margin, min_scale), for the record only.
    """

    kind: str
    center: np.ndarray
    scale: np.ndarray
    params: dict

    def forward(self, y):
        """Labels → model targets. y: (..., 17, 3) array in metres, or a float tensor."""
        if _is_tf_tensor(y):
            center, scale = self._tf_params(y)
            return (y - center) / scale
        y = _as_poses(y)
        return (y - self.center) / self.scale

    def inverse(self, z):
        """Model outputs → labels in metres. z: (..., 17, 3) array or a float tensor."""
        if _is_tf_tensor(z):
            center, scale = self._tf_params(z)
            return z * scale + center
        z = _as_poses(z)
        return z * self.scale + self.center

    def to_dict(self) -> dict:
        """A JSON-ready dict (floats written by repr round-trip exactly)."""
        return {
            "format": "pose_utils.target_transform",
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "units": "m",
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "params": dict(self.params),
        }

    def _tf_params(self, like):
        tf = sys.modules["tensorflow"]
        dtype = like.dtype if like.dtype.is_floating else tf.float32
        return tf.constant(self.center, dtype=dtype), tf.constant(self.scale, dtype=dtype)

    def __repr__(self) -> str:
        return f"TargetTransform(kind={self.kind!r}, params={self.params})"


def _is_tf_tensor(x) -> bool:
    # Only look for TensorFlow if someone already imported it: a tensor cannot exist otherwise.
    tf = sys.modules.get("tensorflow")
    return tf is not None and not isinstance(x, np.ndarray) and tf.is_tensor(x)


def _as_poses(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim < 2 or y.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"poses must have shape (..., {NUM_JOINTS}, 3), got {y.shape}")
    return y


def fit_transform(
    kind: str, joints, margin: float = DEFAULT_MARGIN, min_scale: float = DEFAULT_MIN_SCALE
) -> TargetTransform:
    """Fit a transform of `kind` on training labels `joints` of shape (..., 17, 3), metres.

    - "minmax": each joint coordinate's training range [lo, hi] maps onto [margin, 1 - margin], so a
      sigmoid head reaches every training value and a little beyond. A range below `min_scale` is
      widened to `min_scale` around its middle, which lands at 0.5 (the sigmoid's centre).
    - "standard": (y - mean) / std per joint coordinate, std floored at `min_scale`.
    - "identity": targets are the labels.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown target transform {kind!r}; choose one of: {', '.join(KINDS)}")
    if not 0 <= margin < 0.5:
        raise ConfigError(f"margin must be in [0, 0.5), got {margin}")
    if not min_scale > 0:
        raise ConfigError(f"min_scale must be > 0, got {min_scale}")
    y = _as_poses(joints).reshape(-1, NUM_JOINTS, 3)
    if y.shape[0] == 0:
        raise DataError("cannot fit a target transform on zero poses")
    if not np.all(np.isfinite(y)):
        raise DataError("cannot fit a target transform: the labels contain NaN or infinite values")

    if kind == "identity":
        center, scale, params = np.zeros((NUM_JOINTS, 3)), np.ones((NUM_JOINTS, 3)), {}
    elif kind == "standard":
        center = y.mean(axis=0)
        scale = np.maximum(y.std(axis=0), min_scale)
        params = {"min_scale": min_scale}
    else:
        # center and scale (17, 3) such that forward maps each coordinate's [lo, hi] onto
        # [margin, 1 - margin], a range narrower than min_scale widened to it around its middle.
        ### BEGIN SOLUTION (notebooks/02_model.ipynb)
        lo, hi = y.min(axis=0), y.max(axis=0)
        scale = np.maximum(hi - lo, min_scale) / (1.0 - 2.0 * margin)
        center = (lo + hi) / 2.0 - 0.5 * scale
        ### END SOLUTION
        params = {"margin": margin, "min_scale": min_scale}
    return TargetTransform(kind, center, scale, params)


def transform_from_dict(d: dict) -> TargetTransform:
    """Rebuild a transform from `TargetTransform.to_dict()`; DataError says what is wrong."""
    if not isinstance(d, dict):
        raise DataError(f"a target transform must be a JSON object, got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in KINDS:
        raise DataError(f"unknown target transform kind {kind!r}; expected one of: {', '.join(KINDS)}")
    if d.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise DataError(f"target transform format version {d.get('version')!r} is not {FORMAT_VERSION}")
    arrays = {}
    for key in ("center", "scale"):
        try:
            arrays[key] = np.asarray(d[key], dtype=np.float64)
        except KeyError:
            raise DataError(f"target transform has no {key!r}") from None
        except (TypeError, ValueError):
            raise DataError(f"target transform {key!r} is not a (17, 3) list of numbers") from None
        if arrays[key].shape != (NUM_JOINTS, 3):
            raise DataError(f"target transform {key!r} has shape {arrays[key].shape}, expected (17, 3)")
        if not np.all(np.isfinite(arrays[key])):
            raise DataError(f"target transform {key!r} contains NaN or infinite values")
    if not np.all(arrays["scale"] > 0):
        raise DataError("target transform 'scale' must be > 0 everywhere")
    params = d.get("params", {})
    if not isinstance(params, dict):
        raise DataError("target transform 'params' must be a JSON object")
    return TargetTransform(kind, arrays["center"], arrays["scale"], params)


def save_transform(path: str | os.PathLike, transform: TargetTransform) -> None:
    """Write the transform as JSON, atomically (nothing is pickled)."""
    write_json(path, transform.to_dict())


def load_transform(path: str | os.PathLike) -> TargetTransform:
    """Read a transform saved by `save_transform`; DataError names the file and the problem."""
    try:
        return transform_from_dict(read_json(path))
    except PoseUtilsError as e:
        message = str(e)
        raise DataError(message if message.startswith(str(path)) else f"{path}: {message}") from None
