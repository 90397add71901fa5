"""The data: the contract a dataset folder must meet (`contract.py`: units metres, camera frame,
root-relative labels; every rule checked when a split opens), opening a split (`store.py`: `open_split`
-> `ClipStore`, `validate_dir`, `check-data`), and streaming it into TensorFlow (`pipeline.py`:
`tf_dataset`, with flips, rolls and 2-D keypoints). NumPy and h5py only, until `tf_dataset` is called.
"""

from __future__ import annotations

from pose_utils.data.contract import KEYPOINT_META, META_KEYS, SPLITS, UNITS, DataWarning
from pose_utils.data.pipeline import epoch_order, flip_mask, roll_angles, roll_clips, subset, tf_dataset
from pose_utils.data.store import ClipStore, open_split, validate_dir

__all__ = [
    "KEYPOINT_META", "META_KEYS", "SPLITS", "UNITS", "ClipStore", "DataWarning", "epoch_order", "flip_mask",
    "open_split", "roll_angles", "roll_clips", "subset", "tf_dataset", "validate_dir",
]
