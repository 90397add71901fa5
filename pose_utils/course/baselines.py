"""The mean-pose baseline in notebooks 03 and 04: the run's mean training pose predicted for every frame.

The bar a trained model must clear: a model below it has learnt something from the images. The
prediction is `pose_utils.baseline`'s and its numbers are `evaluate.compute_metrics`', the same ones the
model gets, so the baseline on Figure 4 (notebook 03) and beside every metric (notebook 04) is one
definition.
"""

from __future__ import annotations

import os
from pathlib import Path


def baseline_metrics(run_dir: str | os.PathLike, y_true_m, meta: dict | None = None) -> dict:
    """Every evaluation number (evaluate.compute_metrics) for the run's mean-pose baseline: the mean
    training pose (RUN/mean_pose.json) predicted for every frame. y_true_m: (N, 8, 17, 3) metres."""
    import numpy as np

    from ..baseline import mean_pose_prediction
    from ..evaluate import compute_metrics
    from ..training import read_mean_pose

    y_true = np.asarray(y_true_m, dtype=np.float64)
    return compute_metrics(y_true, mean_pose_prediction(read_mean_pose(run_dir), y_true.shape), meta=meta)


def mean_pose_baseline_mm(run_dir: str | os.PathLike, data_dir: str | os.PathLike, split: str = "valid",
                          max_clips: int | None = None) -> float:
    """MPJPE (mm) of the run's mean-pose baseline on `split` (`baseline_metrics`' mpjpe_mm).

    max_clips: the same evenly spread subset of clips the run validated on (TrainConfig.max_valid_clips).
    """
    import numpy as np

    from ..data import open_split, subset
    from ..fileio import read_json

    units = read_json(Path(run_dir) / "config.json").get("units", "m")
    with open_split(data_dir, split, units) as store:
        joints = np.asarray(store.joints)[subset(len(store), max_clips)]
    return baseline_metrics(run_dir, joints)["mpjpe_mm"]
