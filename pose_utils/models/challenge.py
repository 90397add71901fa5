"""The challenge: a model of your own design, trained within a budget and scored on clips no one has seen.

Notebook 06 explains the task. The grader loads the run you hand in (`runs/challenge/`: the model, its
target transform, config and history) with Keras's safe mode and predicts clips of subjects and motions
that are in no data you have; your MPJPE there earns the challenge's points (docs/assignment.md).

The budget, the same for everyone: at most MAX_PARAMETERS weights, and a training run that fits
TRAINING_BUDGET on a 2-core laptop CPU. Only stock Keras layers and this package's registered layers
(`models/layers.py`) load in safe mode: no `keras.layers.Lambda` with Python code. The model maps clips
(B, frames, S, S, 3) float32 in [0, 1] to (B, frames, 17, 3) float32 in TARGET_KIND's target space
(standardised coordinates: `targets.py`), as every model of `pose_utils.models` does.
"""

from __future__ import annotations

from pose_utils.skeleton import NUM_FRAMES

MAX_PARAMETERS = 1_000_000
TRAINING_BUDGET = "30 minutes of training on the small preset (480 clips of 224×224 frames) on a 2-core CPU"
TARGET_KIND = "standard"


def build_challenge(frames: int = NUM_FRAMES, frame_size: int = 224, **options):
    """Your model for the challenge: (B, frames, S, S, 3) in [0, 1] → (B, frames, 17, 3) standardised
    targets, at most MAX_PARAMETERS weights, loadable in Keras's safe mode. `options` come from
    `TrainConfig.model_options` (notebook 06's `model_options`), for whatever your design takes."""
    ### BEGIN SOLUTION (notebooks/06_challenge.ipynb)
    from pose_utils.models.cnn import build_cnn_tcn

    return build_cnn_tcn(frames, frame_size, **options)
    ### END SOLUTION
