"""Training: one configuration (`config.py`), the GradientTape step (`step.py`), the loop over epochs that
records the history (`epochs.py`), the engine that compiles and calls them (`loop.py`, one epoch's
mechanics in `epoch_run.py`), the run folder and its checkpoints (`runfolder.py`), devices and precision
(`distribute.py`).

`TrainConfig`, `run_finished` and `read_mean_pose` import without TensorFlow; `train` (and `main`, the
`train` command) load the engine, and with it TensorFlow, when first used.
"""

from __future__ import annotations

from pose_utils.training.config import HISTORY_KEYS, KEYPOINT_HISTORY_KEY, TrainConfig
from pose_utils.training.runfolder import read_mean_pose, run_finished

__all__ = ["HISTORY_KEYS", "KEYPOINT_HISTORY_KEY", "TrainConfig", "main", "read_mean_pose", "run_finished",
           "train"]


def __getattr__(name: str):
    if name in ("train", "main"):
        from pose_utils.training import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
