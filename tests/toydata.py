"""A learnable toy dataset for training tests: each frame's brightness encodes its pose.

Every pose is `TEMPLATE + z * DIRECTION` (metres, pelvis at the origin) with one latent z in [0, 1]
per frame, and the frame is a uniform grey of value z. A model that reads brightness can recover the
pose exactly; the mean pose cannot, so "beats the mean pose" means "learned something".
Written in the course's .npy layout (see pose_utils.data).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_rng = np.random.default_rng(1234)
TEMPLATE = _rng.normal(0.0, 0.25, (17, 3)).astype(np.float32)
TEMPLATE[0] = 0.0  # pelvis at the origin: labels are root-relative
DIRECTION = _rng.normal(0.0, 0.15, (17, 3)).astype(np.float32)
DIRECTION[0] = 0.0


def toy_split(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n, 8, size, size, 3) uint8, joints (n, 8, 17, 3) float32 metres)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, 1.0, (n, 1))
    speed = rng.uniform(-0.1, 0.1, (n, 1))
    z = np.clip(start + speed * np.arange(8), 0.0, 1.0)  # (n, 8) smooth per clip
    joints = (TEMPLATE + z[..., None, None] * DIRECTION).astype(np.float32)
    grey = np.round(z * 255).astype(np.uint8)
    frames = np.broadcast_to(grey[:, :, None, None, None], (n, 8, size, size, 3)).copy()
    return frames, joints


def write_toy_data(
    folder, n_train: int = 21, n_valid: int = 10, size: int = 64, seed: int = 0, units: str = "m"
) -> Path:
    """Write train and valid splits of the toy set to `folder` (.npy layout) and return the folder.

    units="mm" stores the labels in millimetres (train with units="mm").
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("valid", n_valid, seed + 1)):
        frames, joints = toy_split(n, size, s)
        np.save(folder / f"videoframes_clips_{split}.npy", frames)
        np.save(folder / f"joint_3d_clips_{split}.npy", joints * (1000.0 if units == "mm" else 1.0))
    return folder


def write_toy_h5(folder, n_train: int = 12, n_valid: int = 9, size: int = 32, seed: int = 0) -> Path:
    """The toy set in our HDF5 layout, with per-clip subject / action / camera metadata."""
    import h5py

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("valid", n_valid, seed + 1)):
        frames, joints = toy_split(n, size, s)
        with h5py.File(folder / f"{split}.h5", "w") as f:
            f.create_dataset("frames", data=frames, chunks=(1, 8, size, size, 3))
            f.create_dataset("joints", data=joints)
            f.create_dataset(
                "subject",
                data=np.array([f"S{i % 2 + 1}" for i in range(n)], dtype=object),
                dtype=h5py.string_dtype(),
            )
            f.create_dataset(
                "action",
                data=np.array(["walk", "run", "jump"] * n, dtype=object)[:n],
                dtype=h5py.string_dtype(),
            )
            f.create_dataset("camera", data=np.arange(n) % 4)
            f.attrs["units"] = "m"
    return folder


# Child processes of the command-line tests: no TensorFlow start-up lines, no progress bars.
QUIET_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TQDM_DISABLE": "1"}


def pose_utils_command(*args) -> list[str]:
    """`python -m pose_utils ARGS` with this interpreter, every argument as a string."""
    return [sys.executable, "-m", "pose_utils", *map(str, args)]


def run_cli(*args, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m pose_utils ARGS` quietly; stdout and stderr captured as text."""
    return subprocess.run(pose_utils_command(*args), env=env or QUIET_ENV, capture_output=True, text=True,
                          timeout=timeout)
