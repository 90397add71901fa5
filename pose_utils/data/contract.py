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

from ..errors import ConfigError, DataError
from ..skeleton import NUM_FRAMES, NUM_JOINTS, ROOT

SPLITS = ("train", "valid")
UNITS = {"m": 1.0, "mm": 1e-3}  # factor to metres
# No body reaches 20 m from its pelvis, and none fits within 20 mm of it: labels whose largest
# |coordinate| is above this are millimetres; under --units mm, below it they are metres.
UNIT_THRESHOLD = 20.0
ROOT_TOLERANCE_M = 1e-3  # a pelvis further than 1 mm from the origin means the labels are not root-relative
H5_CHUNK_CACHE_BYTES = 16 * 1024**2  # room for a few (1, 8, 224, 224, 3) clip chunks (1.15 MiB each)
KEYPOINT_META = ("root", "intrinsics")  # per-clip metadata the 2-D keypoint labels are projected with
META_KEYS = ("subject", "action", "camera", "start_time", "speed", "mirrored", "root", "intrinsics")


class DataWarning(UserWarning):
    """Something about a dataset is unusual but usable (for example labels that are not root-relative)."""


def _npy_names(split: str) -> tuple[str, str]:
    return f"videoframes_clips_{split}.npy", f"joint_3d_clips_{split}.npy"


def _expected_files(split: str) -> str:
    frames_name, joints_name = _npy_names(split)
    return f"{split}.h5, or the course's {frames_name} and {joints_name}"


# ----------------------------------------------------------------------------- .npy files


def _check_readable(path: Path) -> int:
    """The file's size in bytes, or DataError if it cannot be opened for reading."""
    try:
        with open(path, "rb"):
            return path.stat().st_size
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Read a .npy header without loading data: (shape, dtype, fortran_order, data offset).

    Refuses pickles and object arrays before NumPy could unpickle anything.
    """
    size = _check_readable(path)
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(6)
        f.seek(0)
        if head[:1] == b"\x80":
            raise DataError(f"{path}: is a Python pickle, not a .npy array; refused (unpickling runs code)")
        if head[:4] == b"PK\x03\x04":
            raise DataError(f"{path}: is a .npz (zip) archive, not a .npy array")
        if head != b"\x93NUMPY":
            raise DataError(f"{path}: not a .npy file (no NumPy header); corrupt or another format")
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:  # 2.0 and 3.0 share the 4-byte header length; 3.0 only allows utf-8 field names
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except Exception as e:  # garbage parses into any of ValueError, SyntaxError, TokenError, ...
            raise DataError(f"{path}: corrupt .npy header ({type(e).__name__}: {e})") from None
        offset = f.tell()
    if dtype.hasobject:
        raise DataError(
            f"{path}: holds Python objects (dtype {dtype}), i.e. pickled data; refused (never unpickled)"
        )
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise DataError(
            f"{path}: truncated: the header says {_shape_str(shape)} {dtype} ({expected:,} bytes) "
            f"but the file holds {size:,} bytes (incomplete download or copy?)"
        )
    return shape, dtype, fortran, offset


def _open_npy(path: Path):
    """Memory-map a .npy file read-only after checking its header: (shape, dtype, fortran, offset, array)."""
    shape, dtype, fortran, offset = _npy_header(path)
    if 0 in shape:  # mmap cannot map zero bytes; the checks reject N = 0 later
        return shape, dtype, fortran, offset, np.empty(shape, dtype)
    try:
        return shape, dtype, fortran, offset, np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: cannot be memory-mapped ({e})") from None


# ----------------------------------------------------------------------------- HDF5 files


def _open_h5(path: Path):
    import h5py

    _check_readable(path)  # h5py would call a permission problem a corrupt file
    try:
        return h5py.File(path, "r", rdcc_nbytes=H5_CHUNK_CACHE_BYTES)
    except OSError as e:
        text = str(e)
        if "signature" in text:
            raise DataError(f"{path}: not an HDF5 file (no HDF5 signature); corrupt or another format") \
                from None
        if "truncated" in text:
            raise DataError(
                f"{path}: truncated: the file is shorter than its HDF5 header says "
                "(incomplete download or copy?)"
            ) from None
        raise DataError(f"{path}: cannot be opened as HDF5, the file is corrupt ({text})") from None


def _h5_dataset(h5, path: Path, name: str):
    import h5py

    if name not in h5:
        found = ", ".join(sorted(h5.keys())) or "nothing"
        raise DataError(f"{path}: no '{name}' dataset (found: {found})")
    obj = h5[name]
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{path}: '{name}' is a {type(obj).__name__}, not a dataset")
    return obj


def _decode(value):
    """h5py attribute → plain Python (bytes → str, arrays → lists)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_decode(v) for v in value.tolist()] if value.dtype.kind in "OS" else value.tolist()
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_meta(h5, path: Path, n: int) -> dict:
    meta = {}
    for key in META_KEYS:
        if key not in h5:
            continue
        ds = _h5_dataset(h5, path, key)
        if ds.ndim == 0 or ds.shape[0] != n:
            shape = _shape_str(ds.shape)
            raise DataError(f"{path}: '{key}' has shape {shape}, expected one entry per clip ({n})")
        try:
            if ds.dtype.kind in "OS":
                meta[key] = np.asarray(ds.asstr()[()], dtype=str)
            else:
                meta[key] = ds[()]
        except (OSError, ValueError, TypeError) as e:
            raise DataError(f"{path}: cannot read '{key}' ({e})") from None
    return meta


# ----------------------------------------------------------------------------- checks


def _shape_str(shape) -> str:
    return str(tuple(int(s) for s in shape))


def _check_frames(path: Path, shape, dtype) -> None:
    def bad(problem: str) -> DataError:
        return DataError(
            f"{path}: {problem}: shape {_shape_str(shape)}, expected (clips, {NUM_FRAMES}, H, W, 3)"
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


def _check_joints_header(path: Path, shape, dtype) -> None:
    def bad(problem: str) -> DataError:
        return DataError(
            f"{path}: {problem}: shape {_shape_str(shape)}, expected (clips, {NUM_FRAMES}, {NUM_JOINTS}, 3)"
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


def _load_joints(path: Path, raw, units: str) -> tuple[np.ndarray, list[str]]:
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


def _check_units(units: str) -> str:
    if units not in UNITS:
        raise ConfigError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    return units
