"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash or kill at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error delete it.

    `suffix` keeps libraries that look at the extension happy (Keras wants ".keras" / ".weights.h5").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # libraries such as h5py and Keras want to create the file themselves
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj, indent: int = 2, fsync: bool = True) -> None:
    """Write `obj` as JSON atomically (fsync before rename so a power cut cannot leave it empty;
    fsync=False for files rewritten every second, where the next write repairs a lost one)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=indent, sort_keys=False)
            f.write("\n")
            f.flush()
            if fsync:
                os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str, mode: int = 0o644) -> None:
    """Write `text` atomically, readable by everyone (mkstemp alone would leave it private)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)


def read_json(path: str | os.PathLike):
    """Read a JSON file, raising PoseUtilsError with the file name if it is missing or corrupt."""
    from pose_utils.errors import PoseUtilsError

    path = Path(path)
    if not path.is_file():
        raise PoseUtilsError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PoseUtilsError(f"{path}: not valid JSON ({e})") from None
