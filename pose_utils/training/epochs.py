"""The loop over epochs: train on every batch, validate, and record the numbers Figures 1–4 are drawn from.

The report's loop, as the engine (`training.loop`) runs it: for each epoch, every batch of the training
split goes through the training step, then the validation split is evaluated, and the epoch's mean loss
and MPJPE are appended to the history. The engine hands over the batches and the validation (with its
progress bars, compiled steps and checks for NaN) and checkpoints after each epoch; what the history
holds is decided here. Notebook 03 explains it.
"""

from __future__ import annotations

import numpy as np

# What run_epochs records per epoch; the engine adds its timings (config.HISTORY_KEYS).
RECORDED_KEYS = ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe")


def run_epochs(train_epoch, validate, history: dict, epochs: int, start: int = 0, after_epoch=None) -> None:
    """Epochs `start`, ..., `epochs - 1` (counted from 0, as range counts): train, validate, then append the
    epoch's clip means to `history`. The same `epoch` number goes to all three functions below.

    train_epoch(epoch): trains that epoch batch by batch as it is iterated, yielding for each
        batch three numbers: the sum over its clips of the loss, the sum of MPJPE in metres, its clip count.
    validate(epoch): after that epoch's training, the same three sums over the whole validation split.
    history: lists under RECORDED_KEYS (more keys may be there), the epochs before `start` already in
        them; each epoch appends the mean over clips of the loss (eq. 2) and of MPJPE in millimetres.
    after_epoch(epoch, history): if given, called once each epoch is recorded (the engine checkpoints there).
    Returns nothing: the history is appended to in place, like a list.
    """
    if not 0 <= start <= epochs:
        raise ValueError(f"start must be between 0 and epochs ({epochs}), got {start}")
    missing = [key for key in RECORDED_KEYS if key not in history]
    if missing:
        raise KeyError(f"history has no list for {', '.join(missing)}")
    ### BEGIN SOLUTION (notebooks/03_training.ipynb)
    for epoch in range(start, epochs):
        train = np.zeros(3)
        for sums in train_epoch(epoch):
            train += np.asarray(sums, dtype=np.float64)
        valid = np.asarray(validate(epoch), dtype=np.float64)
        for split, (loss, error, clips) in (("train", train), ("val", valid)):
            history[f"{split}_loss"].append(float(loss / clips))
            history[f"{split}_mpjpe"].append(float(1000.0 * error / clips))
        if after_epoch is not None:
            after_epoch(epoch, history)
    ### END SOLUTION
