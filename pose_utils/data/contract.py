"""The data contract, and the checks of a split's files against it.

A dataset folder holds two splits, `train` and `valid`, in either layout:

- the course's: `videoframes_clips_{split}.npy` uint8 (N, 8, H, W, 3) and `joint_3d_clips_{split}.npy`
  float (N, 8, 17, 3), memory-mapped (`allow_pickle=False`: object or pickled arrays are refused);
- ours: `{split}.h5` with datasets `frames` uint8 (N, 8, H, W, 3), `joints` float32 (N, 8, 17, 3)
  and optional per-clip metadata (`subject`, `action`, `camera`, `start_time`, `speed`, `mirrored`,
  `root`, `intrinsics`). If both layouts are present the HDF5 file is used.

Labels are metres in camera coordinates (x right, y down, z forward), root-relative (pelvis at the
origin); Human3.6M joint order (`pose_utils.skeleton`). Every rule that can be checked without reading
the frames (shapes, dtypes, counts, file sizes, finite labels, units) is checked here, and a broken one
raises `DataError` with one plain message naming the file. See docs/data.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pose_utils.errors import ConfigError, DataError
from pose_utils.skeleton import NUM_FRAMES, NUM_JOINTS, ROOT

SPLITS = ("train", "valid")
UNITS = {"m": 1.0, "mm": 1e-3}  # factor to metres
# No body reaches 20 m from its pelvis, and none fits within 20 mm of it: labels whose largest
# |coordinate| is above this are millimetres; under --units mm, below it they are metres.
UNIT_THRESHOLD = 20.0
ROOT_TOLERANCE_M = 1e-3  # a pelvis further than 1 mm from the origin means the labels are not root-relative
KEYPOINT_META = ("root", "intrinsics")  # per-clip metadata the 2-D keypoint labels are projected with
META_KEYS = ("subject", "action", "camera", "start_time", "speed", "mirrored", "root", "intrinsics")


class DataWarning(UserWarning):
    """Something about a dataset is unusual but usable (for example labels that are not root-relative)."""


def npy_names(split: str) -> tuple[str, str]:
    return f"videoframes_clips_{split}.npy", f"joint_3d_clips_{split}.npy"


def expected_files(split: str) -> str:
    frames_name, joints_name = npy_names(split)
    return f"{split}.h5, or the course's {frames_name} and {joints_name}"


# ----------------------------------------------------------------------------- checks


def shape_str(shape) -> str:
    return str(tuple(int(s) for s in shape))


def check_frames(path: Path, shape, dtype) -> None:
    def bad(problem: str) -> DataError:
        return DataError(
            f"{path}: {problem}: shape {shape_str(shape)}, expected (clips, {NUM_FRAMES}, H, W, 3)"
        )

    if len(shape) != 5:
        raise bad(f"frames have rank {len(shape)}, not 5")
    if shape[1] != NUM_FRAMES:
        raise bad(f"clips have {shape[1]} frames, not {NUM_FRAMES}")
    if shape[4] != 3:
        raise bad(f"frames have {shape[4]} channels, not 3 (RGB)")
    if shape[2] == 0 or shape[3] == 0:
        raise bad(f"frames are {shape[2]}x{shape[3]} pixels")
    if dtype != np.uint8:
        raise DataError(f"{path}: frames have dtype {dtype}, expected uint8 (pixel values 0-255)")


def check_joints_header(path: Path, shape, dtype) -> None:
    def bad(problem: str) -> DataError:
        return DataError(
            f"{path}: {problem}: shape {shape_str(shape)}, expected (clips, {NUM_FRAMES}, {NUM_JOINTS}, 3)"
        )

    if len(shape) != 4:
        raise bad(f"labels have rank {len(shape)}, not 4")
    if shape[1] != NUM_FRAMES:
        raise bad(f"labels have {shape[1]} frames per clip, not {NUM_FRAMES}")
    if shape[2] != NUM_JOINTS:
        raise bad(f"labels have {shape[2]} joints, not {NUM_JOINTS}")
    if shape[3] != 3:
        raise bad(f"labels have {shape[3]} coordinates per joint, not 3 (x, y, z)")
    if dtype.kind not in "fiu":
        raise DataError(f"{path}: labels have dtype {dtype}, expected floating-point numbers")


def load_joints(path: Path, raw, units: str) -> tuple[np.ndarray, list[str]]:
    """Read labels into memory, check them, convert to float32 metres. Returns (joints, warnings)."""
    try:
        values = np.asarray(raw[()] if not isinstance(raw, np.ndarray) else raw, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the labels ({e})") from None
    finite = np.isfinite(values)
    if not finite.all():
        bad = np.unique(np.nonzero(~finite)[0])
        listed = ", ".join(str(i) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise DataError(f"{path}: labels are not finite (NaN or infinity) in {len(bad)} clip(s): {listed}")
    if not np.any(values):
        raise DataError(f"{path}: every label is 0; these are not poses")
    # Decide the units on the typical clip, so that a few damaged clips get their own message.
    reach = np.abs(values).reshape(len(values), -1).max(axis=1)  # largest |coordinate| per clip
    typical = float(np.median(reach))
    if units == "m" and typical > UNIT_THRESHOLD:
        raise DataError(
            f"{path}: labels look like millimetres, not metres (a typical clip reaches |coordinate| "
            f"{typical:.1f}; a body stays within a few metres); if they are millimetres, pass --units mm "
            "(units='mm') to convert them"
        )
    if units == "mm" and typical < UNIT_THRESHOLD:
        raise DataError(
            f"{path}: labels look like metres, not millimetres (a typical clip reaches |coordinate| "
            f"{typical:.3f}), but --units mm (units='mm') was given; drop it"
        )
    absurd = np.nonzero(reach * UNITS[units] > UNIT_THRESHOLD)[0]
    if absurd.size:
        listed = ", ".join(str(i) for i in absurd[:5]) + (", ..." if len(absurd) > 5 else "")
        raise DataError(
            f"{path}: labels of {len(absurd)} clip(s) reach {reach[absurd].max() * UNITS[units]:.1f} m from "
            f"the origin, which no body does (damaged labels?): clip(s) {listed}"
        )
    joints = (values * UNITS[units]).astype(np.float32)
    notes = []
    pelvis = float(np.max(np.abs(joints[:, :, ROOT, :]))) if len(joints) else 0.0
    if pelvis > ROOT_TOLERANCE_M:
        notes.append(
            f"{path.name}: labels are not root-relative: the pelvis is up to {pelvis * 1000:.1f} mm from the "
            "origin (metrics still work; subtract it with skeleton.root_relative for the usual protocol)"
        )
    return joints, notes


def check_units(units: str) -> str:
    if units not in UNITS:
        raise ConfigError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    return units
