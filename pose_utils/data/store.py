"""Opening a split (`open_split` -> `ClipStore`), validating a dataset folder, and `check-data`.

The labels (a few MB even for the course data) are loaded into memory when a split opens; the frames
never are, unless asked (`ClipStore.cache_frames`): `read_frames` reads the clips a batch needs.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from pose_utils.data.contract import (
    KEYPOINT_META,
    SPLITS,
    UNITS,
    DataWarning,
    check_units,
    expected_files,
    npy_names,
)
from pose_utils.data.formats import H5Frames, NpyFrames, Opened
from pose_utils.errors import ConfigError, DataError
from pose_utils.keypoints import project_keypoints
from pose_utils.skeleton import ROOT

# ClipStore.cache_frames refuses to take more than this share of the memory the system has available.
CACHE_MEMORY_SHARE = 0.5
CACHE_CHUNK_CLIPS = 64  # clips read per step while caching (one progress-bar update each)


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

    def __init__(self, data_dir: Path, split: str, units: str, opened: Opened, notes: list[str]):
        self.data_dir, self.split, self.units = data_dir, split, units
        self._reader = opened.reader  # NpyFrames | H5Frames (formats.py)
        self.layout = self._reader.layout
        self.path = self._reader.path
        self.paths = self._reader.paths  # the h5 file, or (frames .npy, labels .npy)
        self.joints = opened.joints
        self.meta = opened.meta
        self.attrs = opened.attrs
        self.notes = notes
        self.warnings = opened.warnings
        self._shape = self._reader.shape
        self._closed = False
        self._keypoints = None  # computed on first use (`keypoints`)
        self._cache = None  # all frames in memory, after cache_frames()

    @property
    def frames(self):
        """(N, 8, H, W, 3) uint8 on disk: a read-only memmap or h5py dataset (index with sorted ints)."""
        if self._closed:
            raise DataError(f"{self.path}: the store is closed")
        return self._reader.frames

    def close(self) -> None:
        self._reader.close()
        # The frame cache goes too: tf.data may keep this store alive after training (its reader is
        # registered with TensorFlow), and a benchmark trains one model after another in one process.
        self._cache = None
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
        if need > CACHE_MEMORY_SHARE * available:
            raise ConfigError(
                f"{self.path}: caching the {self.split} frames needs {_human_bytes(need)} of memory but only "
                f"{_human_bytes(available)} is available; train without cache_frames (--cache-frames)"
            )
        cache = np.empty(self._shape, np.uint8)
        bar = tqdm(total=len(self), desc=f"caching {self.split} frames", unit="clip",
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
        if self._closed:
            raise DataError(f"{self.path}: the store is closed")
        # Runs of consecutive indices: one read each (an unshuffled pass reads whole slices).
        breaks = np.nonzero(np.diff(unique) != 1)[0] + 1
        start = 0
        for run in np.split(unique, breaks) if unique.size else []:
            lo, hi = int(run[0]), int(run[-1]) + 1
            try:
                self._reader.read_run(out[start : start + hi - lo], lo)
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


def _available_memory() -> int:
    """Bytes of memory the system can give without swapping."""
    import psutil

    return int(psutil.virtual_memory().available)


def _natural_key(value) -> list:
    """Sort key putting S9 before S11 and camera 2 before camera 10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(value))]


def _counts(values, limit: int = 16) -> str:
    counter = Counter(v.item() if isinstance(v, np.generic) else v for v in values)
    counts = sorted(counter.items(), key=lambda kv: _natural_key(kv[0]))
    text = ", ".join(f"{k} ({c})" for k, c in counts[:limit])
    return text + (f", +{len(counts) - limit} more" if len(counts) > limit else "")


def open_split(data_dir: str | os.PathLike, split: str, units: str = "m") -> ClipStore:
    """Open and validate one split of a dataset folder, in whichever layout it holds.

    units: the unit of the stored labels, "m" or "mm" (converted to metres). Raises DataError naming
    the file and the problem; see docs/data.md for every rule. Close the store (or use `with`) when done.
    """
    check_units(units)
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise DataError(f"{data_dir}: no such folder")
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: not a folder (give the folder that holds the dataset files)")
    h5_path = data_dir / f"{split}.h5"
    frames_path, joints_path = (data_dir / name for name in npy_names(split))
    notes = []
    if h5_path.is_file():
        if frames_path.exists() or joints_path.exists():
            notes.append(f"{frames_path.name} is also present; using {h5_path.name} (HDF5 is preferred)")
        store = ClipStore(data_dir, split, units, H5Frames.open(h5_path, split, units), notes)
    elif frames_path.exists() or joints_path.exists():
        for present, missing in ((frames_path, joints_path), (joints_path, frames_path)):
            if not missing.exists():
                raise DataError(f"{missing}: file not found (needed next to {present.name})")
        store = ClipStore(data_dir, split, units, NpyFrames.open(frames_path, joints_path, units), notes)
    else:
        entries = sorted(p.name for p in data_dir.iterdir() if not p.name.startswith("."))
        if not entries:
            raise DataError(f"{data_dir}: empty folder; expected {expected_files(split)}")
        shown = ", ".join(entries[:8]) + (f", +{len(entries) - 8} more" if len(entries) > 8 else "")
        raise DataError(
            f"{data_dir}: no '{split}' split here; expected {expected_files(split)} (found: {shown})"
        )
    for message in store.warnings:
        warnings.warn(message, DataWarning, stacklevel=2)
    return store


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
