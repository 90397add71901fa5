"""The files a make-data run writes for one split: the course's .npy pair and the HDF5 file
(docs/dataset.md, "Files"). The caller writes them under temporary names (fileio.atomic_path) and
renames them once every split is complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pose_course.datagen.render import Clip
from pose_utils.skeleton import NUM_FRAMES, NUM_JOINTS

GENERATOR_VERSION = "1.0"
# lzf: the flat-shaded frames shrink several-fold and stay cheap to read, unlike gzip, which writes and
# reads slower for a little more (docs/dataset.md, "Measured").
FRAMES_COMPRESSION = "lzf"
COORDINATE_FRAME = (
    "camera coordinates in metres: x right, y down, z forward along the optical axis; joints are "
    "root-relative (pelvis, joint 0, at the origin); root is the pelvis position; project(joints + root, "
    "intrinsics) gives pixels with the top-left pixel centre at (0, 0)"
)


def output_names(split: str) -> dict[str, str]:
    return {"frames_npy": f"videoframes_clips_{split}.npy", "joints_npy": f"joint_3d_clips_{split}.npy",
            "h5": f"{split}.h5"}


def stack_clips(split: str, lo: int, clips: list[Clip]) -> dict:
    """Clips lo, lo + 1, ... of a split as one batch of stacked arrays: what SplitWriter.write takes."""
    return {
        "split": split, "lo": lo,
        "frames": np.stack([c.frames for c in clips]),
        "joints": np.stack([c.joints for c in clips]),
        "root": np.stack([c.root for c in clips]),
        "intrinsics": np.stack([c.K for c in clips]),
        "subject": [c.spec.subject for c in clips],
        "action": [c.spec.action for c in clips],
        "camera": np.array([c.spec.camera for c in clips], np.int16),
        "start_time": np.array([c.spec.start_time for c in clips], np.float32),
        "speed": np.array([c.spec.speed for c in clips], np.float32),
        "mirrored": np.array([c.spec.mirrored for c in clips], bool),
    }


class SplitWriter:
    """Writes one split into temporary files (the caller renames them when every split is done).

    npy: videoframes_clips_{split}.npy (N, 8, S, S, 3) uint8 and joint_3d_clips_{split}.npy
    (N, 8, 17, 3) float32, through np.lib.format.open_memmap (never the whole array in memory).
    h5: {split}.h5 with frames, joints, root, intrinsics and per-clip metadata (docs/dataset.md)."""

    def __init__(self, split: str, n: int, size: int, paths: dict[str, Path], attrs: dict):
        self.n = n
        self.npy = None
        self.h5 = None
        if "frames_npy" in paths:
            fmt = np.lib.format
            self.npy = (
                fmt.open_memmap(paths["frames_npy"], "w+", np.uint8, (n, NUM_FRAMES, size, size, 3)),
                fmt.open_memmap(paths["joints_npy"], "w+", np.float32, (n, NUM_FRAMES, NUM_JOINTS, 3)),
            )
        if "h5" in paths:
            import h5py

            f = self.h5 = h5py.File(paths["h5"], "w")
            f.create_dataset("frames", (n, NUM_FRAMES, size, size, 3), np.uint8,
                             chunks=(1, NUM_FRAMES, size, size, 3), compression=FRAMES_COMPRESSION)
            f.create_dataset("joints", (n, NUM_FRAMES, NUM_JOINTS, 3), np.float32)
            f.create_dataset("root", (n, NUM_FRAMES, 3), np.float32)
            f.create_dataset("intrinsics", (n, 3, 3), np.float32)
            for name in ("subject", "action"):
                f.create_dataset(name, (n,), h5py.string_dtype())
            f.create_dataset("camera", (n,), np.int16)
            f.create_dataset("start_time", (n,), np.float32)
            f.create_dataset("speed", (n,), np.float32)
            f.create_dataset("mirrored", (n,), bool)
            for key, value in attrs.items():
                f.attrs[key] = value

    def write(self, batch: dict) -> None:
        lo = batch["lo"]
        hi = lo + len(batch["frames"])
        if self.npy is not None:
            self.npy[0][lo:hi] = batch["frames"]
            self.npy[1][lo:hi] = batch["joints"]
        if self.h5 is not None:
            for key in ("frames", "joints", "root", "intrinsics", "subject", "action", "camera", "start_time",
                        "speed", "mirrored"):
                self.h5[key][lo:hi] = batch[key]

    def close(self) -> None:
        if self.npy is not None:
            for array in self.npy:
                array.flush()
            self.npy = None  # drop the memmaps so the files can be renamed and reopened
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None
