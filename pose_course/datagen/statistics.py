"""What a rendered dataset looks like in numbers, to set beside Human3.6M's (docs/dataset.md, "Styles"):

    python -m pose_course.datagen.statistics data/small data/hard

For each folder (HDF5 files of make-data): the motions, the camera's height above the floor and its
distance from the person, the frame's field of view, how the person faces the camera, how often the head
is above the pelvis, and the mean pose's error on the validation split (the training split's mean pose,
the baseline every trained model is compared with), overall and per joint.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pose_utils.skeleton import JOINT_NAMES

PELVIS, RHIP, LHIP, HEAD = 0, 1, 4, 10


def _read(folder: Path, split: str) -> dict:
    import h5py

    path = folder / f"{split}.h5"
    if not path.is_file():
        raise SystemExit(f"{path}: not found (statistics reads make-data's HDF5 files)")
    with h5py.File(path, "r") as f:
        out = {k: f[k][()] for k in ("joints", "root", "intrinsics", "action", "subject", "camera")}
        out["attrs"] = dict(f.attrs)
    out["action"] = out["action"].astype(str)
    return out


def facing_degrees(joints: np.ndarray) -> np.ndarray:
    """The angle between the body's forward direction and the direction to the camera, per frame, in
    degrees: 0 faces the camera, 180 shows the back. joints: (..., 17, 3) camera coordinates (y down)."""
    right = joints[..., RHIP, :] - joints[..., LHIP, :]
    up = joints[..., HEAD, :] - joints[..., PELVIS, :]
    forward = np.cross(up, right)  # up x right is the way the chest faces (checked in test_dataset)
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(-forward[..., 2], -1, 1)))  # towards the camera is -z


def statistics(folder: str | Path) -> dict:
    """The numbers of one dataset folder (see the module doc)."""
    folder = Path(folder)
    train, valid = _read(folder, "train"), _read(folder, "valid")
    mean_pose = train["joints"].reshape(-1, 17, 3).mean(axis=0)
    error = np.linalg.norm(valid["joints"] - mean_pose, axis=-1) * 1000  # (N, 8, 17) mm
    every = {k: np.concatenate([train[k], valid[k]]) for k in ("joints", "root", "intrinsics", "action")}
    size = float(train["attrs"]["frame_size"])
    fov = np.degrees(2 * np.arctan(size / 2 / every["intrinsics"][:, 0, 0]))
    distance = np.linalg.norm(every["root"], axis=-1)
    facing = facing_degrees(every["joints"])
    upright = every["joints"][..., HEAD, 1] < every["joints"][..., PELVIS, 1]
    return {
        "folder": str(folder), "style": str(train["attrs"].get("style", "hard")),
        "front_cues": bool(train["attrs"].get("front_cues", False)),
        "clips": (len(train["joints"]), len(valid["joints"])), "motions": sorted(set(every["action"])),
        "distance_m": np.percentile(distance, [5, 50, 95]).round(2).tolist(),
        "fov_deg": np.percentile(fov, [5, 50, 95]).round(1).tolist(),
        "facing_front": float(np.mean(facing < 90)),
        "upright": float(upright.mean()),
        "mean_pose_mpjpe_mm": float(error.mean()),
        "per_joint_mm": dict(zip(JOINT_NAMES, error.mean(axis=(0, 1)).round(1).tolist(), strict=True)),
    }


def table(rows: list[dict]) -> str:
    """The statistics of several folders side by side, as a Markdown table."""
    lines = ["| | " + " | ".join(f"{r['folder']} ({r['style']})" for r in rows) + " |",
             "| --- |" + " ---: |" * len(rows)]

    def row(name, fmt):
        lines.append(f"| {name} | " + " | ".join(fmt(r) for r in rows) + " |")

    row("clips (train, valid)", lambda r: f"{r['clips'][0]}, {r['clips'][1]}")
    row("motions", lambda r: f"{len(r['motions'])}")
    row("front/back cues", lambda r: "yes" if r["front_cues"] else "no")
    row("camera to pelvis (m), 5/50/95 %", lambda r: " / ".join(f"{v:.2f}" for v in r["distance_m"]))
    row("field of view (°), 5/50/95 %", lambda r: " / ".join(f"{v:.1f}" for v in r["fov_deg"]))
    row("frames facing the camera", lambda r: f"{100 * r['facing_front']:.0f} %")
    row("head above pelvis", lambda r: f"{100 * r['upright']:.0f} %")
    row("mean pose MPJPE (valid)", lambda r: f"{r['mean_pose_mpjpe_mm']:.1f} mm")
    for joint in JOINT_NAMES[1:]:
        row(f"  {joint}", lambda r, j=joint: f"{r['per_joint_mm'][j]:.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    folders = sys.argv[1:] if argv is None else argv
    if not folders:
        raise SystemExit("usage: python -m pose_course.datagen.statistics DATA_FOLDER [DATA_FOLDER ...]")
    print(table([statistics(f) for f in folders]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
