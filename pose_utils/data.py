"""The data contract, opening and validating a split, and streaming it into TensorFlow.

A dataset folder holds two splits, `train` and `valid`, in either layout:

- the course's: `videoframes_clips_{split}.npy` uint8 (N, 8, H, W, 3) and `joint_3d_clips_{split}.npy`
  float (N, 8, 17, 3), memory-mapped (`allow_pickle=False`: object or pickled arrays are refused);
- ours: `{split}.h5` with datasets `frames` uint8 (N, 8, H, W, 3), `joints` float32 (N, 8, 17, 3)
  and optional per-clip metadata (`subject`, `action`, `camera`, `start_time`, `speed`, `mirrored`,
  `root`, `intrinsics`). If both layouts are present the HDF5 file is used.

Labels are metres in camera coordinates (x right, y down, z forward), root-relative (pelvis at the
origin); Human3.6M joint order (`pose_utils.skeleton`). `open_split` checks every rule it can without
reading the frames (shapes, dtypes, counts, file sizes, finite labels, units) and raises `DataError`
with one plain message naming the file. The labels (~10 MB for the course data) are loaded into
memory; the frames never are: `tf_dataset` reads one sorted batch of clips per call. See docs/data.md.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .keypoints import flip_keypoints, project_keypoints, roll_keypoints
from .skeleton import JOINT_NAMES, NUM_FRAMES, NUM_JOINTS, ROOT, flip_left_right

SPLITS = ("train", "valid")
UNITS = {"m": 1.0, "mm": 1e-3}  # factor to metres
# No body reaches 20 m from its pelvis, and none fits within 20 mm of it: labels whose largest
# |coordinate| is above this are millimetres; under --units mm, below it they are metres.
UNIT_THRESHOLD = 20.0
ROOT_TOLERANCE_M = 1e-3  # a pelvis further than 1 mm from the origin means the labels are not root-relative
H5_CHUNK_CACHE_BYTES = 16 * 1024**2  # room for a few (1, 8, 224, 224, 3) clip chunks (1.15 MiB each)
# tf_dataset's read-ahead: at most READ_PARALLELISM batches are read at once, and the prefetch buffer
# holds up to PREFETCH_BYTES of float32 batches (1 to MAX_PREFETCH of them). tf.data.AUTOTUNE would
# size the buffer from a share of the machine's RAM, so memory would grow with the batch and the frames.
READ_PARALLELISM = 2
PREFETCH_BYTES = 256 * 1024**2
MAX_PREFETCH = 4
# ClipStore.cache_frames refuses to take more than this share of the memory the system has available.
CACHE_MEMORY_SHARE = 0.5
CACHE_CHUNK_CLIPS = 64  # clips read per step while caching (one progress-bar update each)
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


# ----------------------------------------------------------------------------- the store


class ClipStore:
    """One split of a dataset: frames on disk, labels in memory. Use `open_split` to create one.

    Attributes: path, layout ("npy" | "h5"), split, joints (N, 8, 17, 3) float32 metres, meta (per-clip
    arrays; empty for the npy layout), attrs (HDF5 file attributes), warnings (list of str), notes.
    `frames` is the on-disk (N, 8, H, W, 3) uint8 array (memmap or h5py dataset), which accepts sorted
    integer indices; `read_frames` accepts any indices (from memory after `cache_frames()`). `keypoints`
    gives the 2-D labels (HDF5 layout). A context manager; `close()` releases the file.

    HDF5 and processes: the file is opened in this process; if the store is used in a forked child, it
    reopens the file there instead of sharing the parent's handle (h5py handles must never cross a fork).
    tf.data uses threads, which is safe (h5py serialises them on one lock). A pickled store reopens the
    files by name.
    """

    def __init__(self, data_dir: Path, split: str, units: str, layout: str, paths: tuple[Path, ...],
                 joints: np.ndarray, frames_shape, meta: dict, attrs: dict, notes: list[str],
                 warnings_: list[str]):
        self.data_dir, self.split, self.units, self.layout = data_dir, split, units, layout
        self.path = paths[0]
        self.paths = paths  # the h5 file, or (frames .npy, labels .npy)
        self.joints = joints
        self.meta = meta
        self.attrs = attrs
        self.notes = notes
        self.warnings = warnings_
        self._shape = tuple(int(s) for s in frames_shape)
        self._h5 = None
        self._memmap = None
        self._raw = None  # the .npy frames file, read with os.preadv (see _pread)
        self._offset = 0
        self._pid = os.getpid()
        self._closed = False
        self._keypoints = None  # computed on first use (`keypoints`)
        self._cache = None  # all frames in memory, after cache_frames()

    # -- file handles

    def _attach(self, handle, offset: int | None = None) -> None:
        """Keep the open h5py.File, or the memmap (and the data offset of a C-ordered .npy file)."""
        if self.layout == "h5":
            self._h5 = handle
            return
        self._memmap = handle
        if offset is not None and hasattr(os, "preadv"):
            # Reading a clip with one system call into our buffer measured ~1.7x faster than page
            # faults through the memmap on a cold cache, and the GIL is released while it waits.
            self._raw = open(self.path, "rb", buffering=0)  # closed by close()
            self._offset = offset

    def _pread(self, dest: np.ndarray, first_clip: int) -> None:
        """Fill the C-contiguous `dest` with consecutive clips from `first_clip` on (.npy layout)."""
        view = memoryview(dest.reshape(-1))
        position = self._offset + first_clip * dest[0].nbytes
        while view.nbytes:
            got = os.preadv(self._raw.fileno(), [view], position)
            if got == 0:
                raise DataError(f"{self.path}: the file ends at byte {position:,} (truncated while open?)")
            view, position = view[got:], position + got

    @property
    def frames(self):
        """(N, 8, H, W, 3) uint8 on disk: a read-only memmap or h5py dataset (index with sorted ints)."""
        if self._closed:
            raise DataError(f"{self.path}: the store is closed")
        if self.layout == "npy":
            return self._memmap
        if self._pid != os.getpid():  # forked child: never use the parent's HDF5 handle
            self._h5 = _open_h5(self.path)
            self._pid = os.getpid()
        return self._h5["frames"]

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        if self._raw is not None:
            self._raw.close()
        # The frame cache goes too: tf.data may keep this store alive after training (its reader is
        # registered with TensorFlow), and a benchmark trains one model after another in one process.
        self._h5 = self._memmap = self._raw = self._cache = None
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce__(self):
        return open_split, (self.data_dir, self.split, self.units)

    # -- shape

    def __len__(self) -> int:
        return self._shape[0]

    @property
    def num_frames(self) -> int:
        return self._shape[1]

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return self._shape[2], self._shape[3]

    @property
    def frame_size(self) -> int:
        """H (= W) in pixels; DataError for non-square frames, which the models do not take."""
        height, width = self.frame_shape
        if height != width:
            raise DataError(f"{self.path}: frames are {height}x{width} pixels; the models need square frames")
        return height

    @property
    def has_keypoint_labels(self) -> bool:
        """Whether the split stores what `keypoints` projects with (KEYPOINT_META; the HDF5 layout)."""
        return all(k in self.meta for k in KEYPOINT_META)

    @property
    def keypoints(self) -> np.ndarray:
        """2-D keypoint labels (N, 8, 17, 2) float32, normalised image coordinates (`keypoints`): the
        projections of the 3-D labels with each clip's stored pelvis position and intrinsics. DataError
        for a layout without them (the course's .npy files)."""
        if self._keypoints is None:
            if not self.has_keypoint_labels:
                missing = [k for k in KEYPOINT_META if k not in self.meta]
                raise DataError(
                    f"{self.path}: 2-D keypoint labels need each clip's pelvis position and camera "
                    f"intrinsics (the HDF5 datasets 'root' and 'intrinsics', written by make-data); this "
                    f"{self.layout} layout has no {' or '.join(repr(k) for k in missing)}"
                )
            root = np.asarray(self.meta["root"], np.float64) * UNITS[self.units]
            try:
                kp = project_keypoints(self.joints, root, self.meta["intrinsics"], self.frame_shape)
            except ValueError as e:
                raise DataError(
                    f"{self.path}: cannot project the labels with 'root' and 'intrinsics' ({e})"
                ) from None
            if not np.all(np.isfinite(kp)):
                raise DataError(f"{self.path}: projecting the labels with 'root' and 'intrinsics' gives "
                                "NaN or infinite pixels; check 'intrinsics'")
            self._keypoints = kp
        return self._keypoints

    # -- reading

    def cache_frames(self, progress: bool = True) -> None:
        """Read every clip's frames into memory once; `read_frames` then serves them from there.

        Worth it when the split fits: each epoch then skips reading and decompressing the file, which on
        a 2-core CPU competes with the training step for the cores (docs/data.md). ConfigError if the
        frames need more than CACHE_MEMORY_SHARE of the memory available now.
        """
        from tqdm.auto import tqdm

        if self._cache is not None:
            return
        need = int(np.prod(self._shape))
        available = _available_memory()
        if available is not None and need > CACHE_MEMORY_SHARE * available:
            raise ConfigError(
                f"{self.path}: caching the {self.split} frames needs {_human_bytes(need)} of memory but only "
                f"{_human_bytes(available)} is available; train without cache_frames (--cache-frames)"
            )
        cache = np.empty(self._shape, np.uint8)
        bar = tqdm(total=len(self), desc=f"caching {self.split} frames", unit="clip", leave=False,
                   **({} if progress else {"disable": True}))
        with bar:
            for lo in range(0, len(self), CACHE_CHUNK_CLIPS):
                hi = min(lo + CACHE_CHUNK_CLIPS, len(self))
                cache[lo:hi] = self.read_frames(np.arange(lo, hi))
                bar.update(hi - lo)
        self._cache = cache

    def read_frames(self, indices) -> np.ndarray:
        """Frames of the clips `indices` (any order, repeats allowed): (k, 8, H, W, 3) uint8, a new array.

        The file is read in increasing index order (contiguous runs as one slice), then reordered; after
        `cache_frames` the frames come from memory.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"clip indices must be in [0, {n}), got {idx.min()}..{idx.max()}")
        if self._cache is not None:
            return self._cache[idx]  # fancy indexing copies: callers may write to the result
        unique, inverse = np.unique(idx, return_inverse=True)
        out = np.empty((len(unique),) + self._shape[1:], np.uint8)
        frames = self.frames
        # Runs of consecutive indices: one read each (an unshuffled pass reads whole slices).
        breaks = np.nonzero(np.diff(unique) != 1)[0] + 1
        start = 0
        for run in np.split(unique, breaks) if unique.size else []:
            lo, hi = int(run[0]), int(run[-1]) + 1
            try:
                if self.layout == "h5":
                    frames.read_direct(out, np.s_[lo:hi], np.s_[start : start + hi - lo])
                elif self._raw is not None:
                    self._pread(out[start : start + hi - lo], lo)
                else:
                    out[start : start + hi - lo] = frames[lo:hi]
            except OSError as e:
                clips = f"clip {lo}" if hi == lo + 1 else f"clips {lo}..{hi - 1}"
                raise DataError(f"{self.path}: cannot read {clips}, the file is corrupt ({e})") from None
            start += hi - lo
        return out if np.array_equal(unique, idx) else out[inverse]

    # -- description

    def summary(self) -> str:
        """A few lines: clips, frame size, label ranges in mm, metadata counts, notes and warnings."""
        height, width = self.frame_shape
        files = " + ".join(p.name for p in self.paths)
        size = len(self) * self.num_frames * height * width * 3
        lines = [
            f"{self.split}: {len(self)} clips of {self.num_frames} frames {height}x{width} RGB uint8 "
            f"({_human_bytes(size)} of frames) from {files} [{self.layout}]"
        ]
        mm = self.joints.astype(np.float64) * 1000.0
        ranges = ", ".join(f"{a} {mm[..., i].min():.0f}..{mm[..., i].max():.0f}" for i, a in enumerate("xyz"))
        reach = np.linalg.norm(mm - mm[:, :, ROOT : ROOT + 1, :], axis=-1).max()
        lines.append(f"  labels in mm: {ranges}; farthest joint from the pelvis {reach:.0f}")
        for key, label in (("subject", "subjects"), ("action", "actions"), ("camera", "cameras")):
            if key in self.meta:
                lines.append(f"  {label}: {_counts(self.meta[key])}")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<ClipStore {self.split} {self.layout}, {len(self)} clips, {state}: {self.path}>"


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} GB"


def _available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (Linux MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _natural_key(value) -> list:
    """Sort key putting S9 before S11 and camera 2 before camera 10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(value))]


def _counts(values, limit: int = 16) -> str:
    counter = Counter(v.item() if isinstance(v, np.generic) else v for v in values)
    counts = sorted(counter.items(), key=lambda kv: _natural_key(kv[0]))
    text = ", ".join(f"{k} ({c})" for k, c in counts[:limit])
    return text + (f", +{len(counts) - limit} more" if len(counts) > limit else "")


# ----------------------------------------------------------------------------- opening


def _check_units(units: str) -> str:
    if units not in UNITS:
        raise ConfigError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    return units


def open_split(data_dir: str | os.PathLike, split: str, units: str = "m") -> ClipStore:
    """Open and validate one split of a dataset folder, in whichever layout it holds.

    units: the unit of the stored labels, "m" or "mm" (converted to metres). Raises DataError naming
    the file and the problem; see docs/data.md for every rule. Close the store (or use `with`) when done.
    """
    _check_units(units)
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise DataError(f"{data_dir}: no such folder")
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: not a folder (give the folder that holds the dataset files)")
    h5_path = data_dir / f"{split}.h5"
    frames_path, joints_path = (data_dir / name for name in _npy_names(split))
    notes = []
    if h5_path.is_file():
        if frames_path.exists() or joints_path.exists():
            notes.append(f"{frames_path.name} is also present; using {h5_path.name} (HDF5 is preferred)")
        store = _open_h5_split(data_dir, split, units, h5_path, notes)
    elif frames_path.exists() or joints_path.exists():
        for present, missing in ((frames_path, joints_path), (joints_path, frames_path)):
            if not missing.exists():
                raise DataError(f"{missing}: file not found (needed next to {present.name})")
        store = _open_npy_split(data_dir, split, units, frames_path, joints_path, notes)
    else:
        entries = sorted(p.name for p in data_dir.iterdir() if not p.name.startswith("."))
        if not entries:
            raise DataError(f"{data_dir}: empty folder; expected {_expected_files(split)}")
        shown = ", ".join(entries[:8]) + (f", +{len(entries) - 8} more" if len(entries) > 8 else "")
        raise DataError(
            f"{data_dir}: no '{split}' split here; expected {_expected_files(split)} (found: {shown})"
        )
    for message in store.warnings:
        warnings.warn(message, DataWarning, stacklevel=2)
    return store


def _check_count(where: Path, frames_name: str, n_frames: int, joints_name: str, n_joints: int) -> None:
    if n_frames != n_joints:
        raise DataError(
            f"{where}: frames and labels have different clip counts: {frames_name} has {n_frames} clips, "
            f"{joints_name} has {n_joints}"
        )
    if n_frames == 0:
        raise DataError(f"{where}: {frames_name} holds no clips")


def _open_npy_split(data_dir, split, units, frames_path, joints_path, notes) -> ClipStore:
    f_shape, f_dtype, fortran, offset, frames = _open_npy(frames_path)
    _check_frames(frames_path, f_shape, f_dtype)
    j_shape, j_dtype, _, _, raw = _open_npy(joints_path)
    _check_joints_header(joints_path, j_shape, j_dtype)
    _check_count(frames_path.parent, frames_path.name, f_shape[0], joints_path.name, j_shape[0])
    joints, warns = _load_joints(joints_path, raw, units)
    del raw  # the labels are in memory now; drop their mapping
    store = ClipStore(data_dir, split, units, "npy", (frames_path, joints_path), joints, f_shape, {}, {},
                      notes, warns)
    store._attach(frames, None if fortran else offset)  # Fortran order: clips are not contiguous
    return store


def _open_h5_split(data_dir, split, units, path, notes) -> ClipStore:
    h5 = _open_h5(path)
    try:
        frames = _h5_dataset(h5, path, "frames")
        raw = _h5_dataset(h5, path, "joints")
        _check_frames(path, frames.shape, frames.dtype)
        _check_joints_header(path, raw.shape, raw.dtype)
        _check_count(path, "'frames'", frames.shape[0], "'joints'", raw.shape[0])
        attrs = {k: _decode(v) for k, v in h5.attrs.items()}
        declared = attrs.get("units")
        if declared is not None and declared not in UNITS:
            raise DataError(f"{path}: the file declares units {declared!r}; expected one of m, mm")
        if declared is not None and declared != units:
            raise DataError(f"{path}: the file declares units {declared!r} but --units {units} was given; "
                            f"pass --units {declared}")
        names = attrs.get("joint_names")
        if names is not None and tuple(names) != JOINT_NAMES:
            raise DataError(f"{path}: joint_names {_first_difference(names, JOINT_NAMES)} (Human3.6M order, "
                            "see pose_utils.skeleton)")
        joints, warns = _load_joints(path, raw, units)
        meta = _read_meta(h5, path, frames.shape[0])
        if attrs.get("split", split) != split:
            warns.append(f"{path.name}: the file says it is the {attrs['split']!r} split")
        store = ClipStore(data_dir, split, units, "h5", (path,), joints, frames.shape, meta, attrs, notes,
                          warns)
        store._attach(h5)
        # Reading the first and last clip finds a damaged chunk index before training starts (2 chunks).
        store.read_frames([0, len(store) - 1])
        return store
    except BaseException:
        h5.close()
        raise


def _first_difference(names, expected) -> str:
    for i, (got, want) in enumerate(zip(names, expected, strict=False)):
        if got != want:
            return f"has {got!r} as joint {i}, expected {want!r}"
    return f"lists {len(names)} joints, expected {len(expected)}"


def validate_dir(data_dir: str | os.PathLike, units: str = "m") -> str:
    """Open both splits, check they agree, and return their summaries (DataError on any problem)."""
    summaries, shapes = [], {}
    data_dir = Path(data_dir)
    for split in SPLITS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # the summary lists them
            store = open_split(data_dir, split, units)
        with store:
            summaries.append(store.summary())
            shapes[split] = store.frame_shape
    if shapes["train"] != shapes["valid"]:
        (th, tw), (vh, vw) = shapes["train"], shapes["valid"]
        raise DataError(f"{data_dir}: train frames are {th}x{tw} pixels but valid frames are {vh}x{vw}")
    return f"{data_dir}: OK\n" + "\n".join(summaries)


def main(args) -> int:
    """`python -m pose_utils check-data DIR [--units m|mm]`: print the summary or raise DataError."""
    print(validate_dir(args.data, units=args.units))
    return 0


# ----------------------------------------------------------------------------- streaming


def _seed_sequence(seed: int, epoch: int, stream: int) -> np.random.SeedSequence:
    # Negative seeds are valid in the CLI; SeedSequence wants non-negative entropy words.
    return np.random.SeedSequence([int(seed) % 2**64, int(epoch) % 2**64, stream])


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of clips 0..n-1 for one epoch: a pure function of (n, seed, epoch).

    A run resumed at epoch e sees exactly the order an uninterrupted run would have seen.
    """
    return np.random.default_rng(_seed_sequence(seed, epoch, 0)).permutation(n)


def flip_mask(n: int, seed: int, epoch: int) -> np.ndarray:
    """Which of the n clips `tf_dataset(flip_augment=True)` mirrors in this epoch: (n,) bool, about half."""
    return np.random.default_rng(_seed_sequence(seed, epoch, 1)).random(n) < 0.5


def roll_angles(n: int, seed: int, epoch: int, max_degrees: float) -> np.ndarray:
    """The in-plane turn of each of the n clips for `tf_dataset(roll_augment=max_degrees)` in this epoch:
    (n,) float32 radians, uniform in [-max_degrees, max_degrees] (all 0 when max_degrees is 0)."""
    rng = np.random.default_rng(_seed_sequence(seed, epoch, 2))
    return np.deg2rad(rng.uniform(-max_degrees, max_degrees, n)).astype(np.float32)


def roll_clips(frames, joints, angles):
    """Turn each clip's camera about its optical axis by angles[i] radians: exact for both inputs.

    Inputs: frames (B, T, H, W, C) float32, joints (B, T, 17, 3) metres in camera coordinates, angles (B,).
    A camera rolled by a turns camera coordinates (x, y) by a about the optical axis z, and the image by
    a about the principal point, the frame centre in our data (pixels brought into view from beyond the
    edge repeat the edge). Returns both, turned, as TensorFlow tensors.
    """
    import tensorflow as tf

    shape = tf.shape(frames)
    b, t, h, w = shape[0], shape[1], shape[2], shape[3]
    cos, sin = tf.cos(angles), tf.sin(angles)
    cx, cy = (tf.cast(w, tf.float32) - 1) / 2, (tf.cast(h, tf.float32) - 1) / 2
    # Output pixel p reads the input at R(-a)(p - c) + c (the transform maps output to input points).
    zero = tf.zeros_like(cos)
    transform = tf.stack([cos, sin, cx - cos * cx - sin * cy,
                          -sin, cos, cy + sin * cx - cos * cy, zero, zero], axis=1)  # (B, 8)
    transform = tf.reshape(tf.repeat(transform[:, None], t, axis=1), [-1, 8])
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.reshape(frames, tf.concat([[b * t], shape[2:]], 0)), transforms=transform,
        output_shape=tf.stack([h, w]), fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    x, y = joints[..., 0], joints[..., 1]
    c, s = cos[:, None, None], sin[:, None, None]
    turned = tf.stack([c * x - s * y, s * x + c * y, joints[..., 2]], axis=-1)
    return tf.reshape(images, shape), turned


def _check_indices(indices, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"indices must be a 1-D array of clip numbers, got {idx.shape} {idx.dtype}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must be in [0, {n}), got {idx.min()}..{idx.max()}")
    if len(np.unique(idx)) != len(idx):
        raise ValueError("indices contain repeats; every clip must appear at most once per epoch")
    return idx


def tf_dataset(store: ClipStore, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
               indices=None, drop_remainder: bool = False, flip_augment: bool = False,
               target_transform=None, prefetch="auto", roll_augment: float = 0.0, keypoints: bool = False):
    """One epoch of (frames, joints) batches, or (frames, joints, keypoints) with `keypoints`, from disk.

    Yields frames float32 (B, 8, H, W, 3) in [0, 1] (uint8 / 255, done in the graph) and joints float32
    (B, 8, 17, 3): metres, or `target_transform.forward` of them. Every clip of `indices` (default: all)
    appears exactly once; with `shuffle` the order is `epoch_order(seed, epoch)`. With `flip_augment`,
    the clips of `flip_mask(seed, epoch)` are mirrored: frames flipped horizontally, joints x -> -x with
    left/right labels swapped (`skeleton.flip_left_right`); exact when the camera's principal point is
    the image centre (see docs/data.md). With `roll_augment` = d > 0, every clip is also turned in the
    image plane by `roll_angles(seed, epoch, d)` with its labels (`roll_clips`): a camera roll, exact for
    the same reason. `keypoints`: also yield the 2-D labels (B, 8, 17, 2) float32
    (`ClipStore.keypoints`, normalised image coordinates), moved by every augmentation with the pixels.
    Build a new dataset per epoch: only indices are prepared.

    Each batch of indices is read from the file in one `tf.numpy_function` call (sorted, see
    `ClipStore.read_frames`), READ_PARALLELISM batches at once (1 for batches over 128 MiB as float32).
    prefetch: "auto" buffers 1 to MAX_PREFETCH batches within PREFETCH_BYTES; an int (or
    tf.data.AUTOTUNE) is passed to `Dataset.prefetch`; None or 0 for no buffer. Memory is a few batches,
    whatever the size of the dataset.
    """
    import tensorflow as tf

    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(store)
    order = np.arange(n, dtype=np.int64) if indices is None else _check_indices(indices, n)
    if shuffle:
        order = order[epoch_order(len(order), seed, epoch)]
    flips = flip_mask(n, seed, epoch)[order] if flip_augment else np.zeros(len(order), bool)
    angles = roll_angles(n, seed, epoch, roll_augment)[order]
    keypoints_all = store.keypoints if keypoints else None  # DataError now, not inside the pipeline
    joints_all = store.joints
    height, width = store.frame_shape
    frames_spec = (batch_size if drop_remainder else None, store.num_frames, height, width, 3)
    joints_spec = (batch_size if drop_remainder else None, store.num_frames, NUM_JOINTS, 3)

    def read(idx: np.ndarray, flip: np.ndarray):
        frames = store.read_frames(idx)
        joints = joints_all[idx]
        kp = keypoints_all[idx] if keypoints else np.zeros((len(idx), 0), np.float32)
        if flip.any():
            frames[flip] = frames[flip][:, :, :, ::-1, :]  # mirror along the width axis
            joints[flip] = flip_left_right(joints[flip]).astype(np.float32)
            if keypoints:
                kp[flip] = flip_keypoints(kp[flip])
        return frames, joints, kp

    def load(idx, flip, angle):
        frames, joints, kp = tf.numpy_function(read, [idx, flip], [tf.uint8, tf.float32, tf.float32],
                                               name="read_clips")
        frames = tf.ensure_shape(frames, frames_spec)
        joints = tf.ensure_shape(joints, joints_spec)
        frames = tf.cast(frames, tf.float32) / 255.0
        if keypoints:
            kp = tf.ensure_shape(kp, joints_spec[:3] + (2,))
        if roll_augment:
            frames, joints = roll_clips(frames, joints, angle)
            if keypoints:
                kp = roll_keypoints(kp, angle)
        if target_transform is not None:
            joints = tf.cast(target_transform.forward(joints), tf.float32)
        return (frames, joints, kp) if keypoints else (frames, joints)

    ds = tf.data.Dataset.from_tensor_slices((order, flips, angles))  # indices only; frames stay on disk
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    batch_bytes = batch_size * store.num_frames * height * width * 3 * 4  # as float32
    if prefetch == "auto":
        prefetch = int(np.clip(PREFETCH_BYTES // batch_bytes, 1, MAX_PREFETCH))
    parallel = READ_PARALLELISM if batch_bytes * READ_PARALLELISM <= PREFETCH_BYTES else 1
    ds = ds.map(load, num_parallel_calls=parallel, deterministic=True)
    if prefetch:
        ds = ds.prefetch(prefetch)
    return ds
