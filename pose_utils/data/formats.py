"""The two file layouts of a split, one reader class each: the course's .npy pair (`NpyFrames`) and our
HDF5 file (`H5Frames`). Each opens its files, checks them against the contract (contract.py: the rules),
loads the labels and reads runs of clips' frames; `ClipStore` (store.py) holds one of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pose_utils.data.contract import (
    META_KEYS,
    UNITS,
    check_frames,
    check_joints_header,
    load_joints,
    shape_str,
)
from pose_utils.errors import DataError
from pose_utils.skeleton import JOINT_NAMES

H5_CHUNK_CACHE_BYTES = 16 * 1024**2  # room for a few (1, 8, 224, 224, 3) clip chunks (1.15 MiB each)


@dataclass
class Opened:
    """What opening a split's files gives `ClipStore`: the frame reader and the labels, checked."""

    reader: object  # NpyFrames | H5Frames
    joints: np.ndarray  # (N, 8, 17, 3) float32 metres
    meta: dict = field(default_factory=dict)  # per-clip arrays (HDF5 layout)
    attrs: dict = field(default_factory=dict)  # HDF5 file attributes
    warnings: list = field(default_factory=list)


class NpyFrames:
    """The course's layout: frames memory-mapped from `videoframes_clips_{split}.npy`; a clip run read with
    one `os.preadv` where the file is C-ordered."""

    layout = "npy"

    def __init__(self, frames_path: Path, joints_path: Path, memmap, offset: int | None):
        self.paths = (frames_path, joints_path)
        self.path = frames_path
        self.shape = tuple(int(n) for n in memmap.shape)
        self._memmap = memmap
        self._raw = None  # the frames file, read with os.preadv (see _pread)
        self._offset = 0
        if offset is not None and hasattr(os, "preadv"):
            # Reading a clip with one system call into our buffer measured ~1.7x faster than page
            # faults through the memmap on a cold cache, and the GIL is released while it waits.
            self._raw = open(frames_path, "rb", buffering=0)  # closed by close()
            self._offset = offset

    @classmethod
    def open(cls, frames_path: Path, joints_path: Path, units: str) -> Opened:
        f_shape, f_dtype, fortran, offset, frames = _open_npy(frames_path)
        check_frames(frames_path, f_shape, f_dtype)
        j_shape, j_dtype, _, _, raw = _open_npy(joints_path)
        check_joints_header(joints_path, j_shape, j_dtype)
        _check_count(frames_path.parent, frames_path.name, f_shape[0], joints_path.name, j_shape[0])
        joints, warns = load_joints(joints_path, raw, units)
        del raw  # the labels are in memory now; drop their mapping
        # Fortran order: clips are not contiguous on disk, so no preadv
        reader = cls(frames_path, joints_path, frames, None if fortran else offset)
        return Opened(reader, joints, warnings=warns)

    @property
    def frames(self):
        return self._memmap

    def read_run(self, out: np.ndarray, lo: int) -> None:
        """Fill `out` with the frames of clips lo, lo + 1, ... (len(out) clips)."""
        if self._raw is None:
            out[:] = self._memmap[lo : lo + len(out)]
            return
        view = memoryview(out.reshape(-1))
        position = self._offset + lo * out[0].nbytes
        while view.nbytes:
            got = os.preadv(self._raw.fileno(), [view], position)
            if got == 0:
                raise DataError(f"{self.path}: the file ends at byte {position:,} (truncated while open?)")
            view, position = view[got:], position + got

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self._memmap = self._raw = None


class H5Frames:
    """Our layout: `{split}.h5`. The file is opened in this process; used in a forked child, it reopens the
    file there instead of sharing the parent's handle (h5py handles must never cross a fork). tf.data uses
    threads, which is safe (h5py serialises them on one lock)."""

    layout = "h5"

    def __init__(self, path: Path, h5):
        self.paths = (path,)
        self.path = path
        self.shape = tuple(int(n) for n in h5["frames"].shape)
        self._h5 = h5
        self._pid = os.getpid()

    @classmethod
    def open(cls, path: Path, split: str, units: str) -> Opened:
        h5 = _open_h5(path)
        try:
            frames = _h5_dataset(h5, path, "frames")
            raw = _h5_dataset(h5, path, "joints")
            check_frames(path, frames.shape, frames.dtype)
            check_joints_header(path, raw.shape, raw.dtype)
            _check_count(path, "'frames'", frames.shape[0], "'joints'", raw.shape[0])
            attrs = {k: _decode(v) for k, v in h5.attrs.items()}
            declared = attrs.get("units")
            if declared is not None and declared not in UNITS:
                raise DataError(f"{path}: the file declares units {declared!r}; expected one of m, mm")
            if declared is not None and declared != units:
                raise DataError(f"{path}: the file declares units {declared!r} but --units {units} was "
                                f"given; pass --units {declared}")
            names = attrs.get("joint_names")
            if names is not None and tuple(names) != JOINT_NAMES:
                raise DataError(f"{path}: joint_names {_first_difference(names, JOINT_NAMES)} (Human3.6M "
                                "order, see pose_utils.skeleton)")
            joints, warns = load_joints(path, raw, units)
            meta = _read_meta(h5, path, frames.shape[0])
            if attrs.get("split", split) != split:
                warns.append(f"{path.name}: the file says it is the {attrs['split']!r} split")
            reader = cls(path, h5)
            # Reading the first and last clip finds a damaged chunk index before training starts (2 chunks).
            for lo in {0, reader.shape[0] - 1}:
                reader.read_run(np.empty((1,) + reader.shape[1:], np.uint8), lo)
            return Opened(reader, joints, meta, attrs, warns)
        except BaseException:
            h5.close()
            raise

    @property
    def frames(self):
        if self._pid != os.getpid():  # forked child: never use the parent's HDF5 handle
            self._h5 = _open_h5(self.path)
            self._pid = os.getpid()
        return self._h5["frames"]

    def read_run(self, out: np.ndarray, lo: int) -> None:
        """Fill `out` with the frames of clips lo, lo + 1, ... (len(out) clips)."""
        try:
            self.frames.read_direct(out, np.s_[lo : lo + len(out)])
        except OSError as e:
            clips = f"clip {lo}" if len(out) == 1 else f"clips {lo}..{lo + len(out) - 1}"
            raise DataError(f"{self.path}: cannot read {clips}, the file is corrupt ({e})") from None

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None


def _check_count(where: Path, frames_name: str, n_frames: int, joints_name: str, n_joints: int) -> None:
    if n_frames != n_joints:
        raise DataError(
            f"{where}: frames and labels have different clip counts: {frames_name} has {n_frames} clips, "
            f"{joints_name} has {n_joints}"
        )
    if n_frames == 0:
        raise DataError(f"{where}: {frames_name} holds no clips")


def _first_difference(names, expected) -> str:
    for i, (got, want) in enumerate(zip(names, expected, strict=False)):
        if got != want:
            return f"has {got!r} as joint {i}, expected {want!r}"
    return f"lists {len(names)} joints, expected {len(expected)}"


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
            f"{path}: truncated: the header says {shape_str(shape)} {dtype} ({expected:,} bytes) "
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
            shape = shape_str(ds.shape)
            raise DataError(f"{path}: '{key}' has shape {shape}, expected one entry per clip ({n})")
        try:
            if ds.dtype.kind in "OS":
                meta[key] = np.asarray(ds.asstr()[()], dtype=str)
            else:
                meta[key] = ds[()]
        except (OSError, ValueError, TypeError) as e:
            raise DataError(f"{path}: cannot read '{key}' ({e})") from None
    return meta
