"""One epoch as the engine (`loop.py`) runs it, around the student's `run_epochs` (`epochs.py`).

`EpochRun.train` puts each batch through the compiled step with the progress bars, `progress.json` and
a check for NaN; `EpochRun.validate` evaluates the validation split after it; `log_epoch`, once
`run_epochs` has recorded the epoch, adds the timings, checkpoints, writes `history.json` and
TensorBoard, and prints the epoch's line.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from pose_utils.errors import TrainingError
from pose_utils.fileio import write_json
from pose_utils.training.config import HISTORY_KEYS, KEYPOINT_HISTORY_KEY
from pose_utils.training.epochs import RECORDED_KEYS
from pose_utils.training.runfolder import RunFolder


class EpochRun:
    """What `run_epochs` calls: one epoch's training batches and its validation, with progress and checks.

    Keeps what the history's other columns need: the epoch's timings and 2-D keypoint error.
    """

    def __init__(self, trainer, splits, bars, tracker, run_dir: Path):
        self.trainer, self.splits, self.bars, self.tracker = trainer, splits, bars, tracker
        self.run_dir = run_dir
        self.started = self.train_seconds = 0.0
        self.totals = np.zeros(4)  # sums of per-clip loss, MPJPE (m), clips, 2-D keypoint error

    def train(self, epoch: int):
        """Train one epoch, yielding each batch's [loss sum, MPJPE sum (m), clips]."""
        trainer, config = self.trainer, self.trainer.config
        train_store, train_idx = self.splits[:2]
        bar, val_bar = self.bars
        title = f"epoch {epoch + 1}/{config.epochs}"
        for b, phase in ((bar, "train"), (val_bar, "validate")):
            b.reset()
            b.set_description(f"{title} {phase}", refresh=False)
            b.set_postfix({}, refresh=True)
        self.tracker.update(epoch + 1, "train", 0, bar.total, force=True)
        self.started = time.perf_counter()
        self.totals = totals = np.zeros(4)
        for step, batch in enumerate(trainer.train_dataset(train_store, train_idx, epoch), start=1):
            sums = np.array([float(v) for v in trainer.train_step(*batch)])
            if not np.all(np.isfinite(sums)):
                raise nonfinite("training", sums, f"at epoch {epoch + 1}, step {step}", epoch, self.run_dir,
                                 config)
            totals += sums
            bar.update()
            bar.set_postfix(
                loss=f"{totals[0] / totals[2]:.4g}", mpjpe=f"{1000 * totals[1] / totals[2]:.1f}mm",
                **({"kp": f"{totals[3] / totals[2]:.3f}"} if config.keypoint_loss else {}),
            )
            self.tracker.update(epoch + 1, "train", step, bar.total)
            yield sums[:3]
        self.train_seconds = time.perf_counter() - self.started

    def validate(self, epoch: int) -> np.ndarray:
        """[loss sum, MPJPE sum (m), clips] over the validation split, after epoch `epoch`."""
        valid_store, valid_idx = self.splits[2:]
        val_bar = self.bars[1]
        val_bar.reset()  # its clock starts now: from the epoch's start it showed the training time as waiting

        def validated(i):
            val_bar.update()
            self.tracker.update(epoch + 1, "validate", i, val_bar.total)

        val_sums = self.trainer.evaluate(valid_store, valid_idx, on_batch=validated)
        if not np.all(np.isfinite(val_sums)):  # never checkpoint weights that predict NaN or infinity
            raise nonfinite("validation", val_sums, f"after epoch {epoch + 1}", epoch, self.run_dir,
                             self.trainer.config)
        val_bar.set_postfix(loss=f"{val_sums[0] / val_sums[2]:.4g}",
                            mpjpe=f"{1000.0 * val_sums[1] / val_sums[2]:.1f}mm")
        return val_sums

    def timings(self) -> dict:
        return {"epoch_seconds": time.perf_counter() - self.started,
                "clips_per_second": len(self.splits[1]) / self.train_seconds}


def log_epoch(trainer, checkpoints, history: dict, epoch_run: EpochRun, epoch: int, writer,
               progress: bool) -> None:
    """After `run_epochs` recorded the epoch: add the timings; checkpoint; write history.json and
    TensorBoard; print."""
    config, folder, totals = trainer.config, RunFolder(checkpoints.run_dir), epoch_run.totals
    recorded = {key: len(history[key]) for key in RECORDED_KEYS}
    if set(recorded.values()) != {epoch + 1}:
        raise TrainingError(
            f"after epoch {epoch + 1} the history should hold {epoch + 1} values of each of "
            f"{', '.join(RECORDED_KEYS)}, but holds {recorded}: run_epochs (pose_utils/training/epochs.py) "
            "appends one value per key and epoch"
        )
    trainer.epoch.assign(epoch + 1)
    for key, value in epoch_run.timings().items():
        history[key].append(float(value))
    if config.keypoint_loss:  # mean 2-D distance, normalised image units (keypoints.py)
        history.setdefault(KEYPOINT_HISTORY_KEY, []).append(float(totals[3] / totals[2]))
    row = {key: history[key][-1] for key in HISTORY_KEYS}
    # Checkpoint first, history second: the pointer file carries the history too, so a kill in
    # between loses nothing and resume rewrites history.json from it. In the background where it can be.
    snapshot = {k: list(v) for k, v in history.items()}
    checkpoints.save(epoch + 1, history, after=lambda: write_json(folder.history_file, snapshot))
    if checkpoints.chief:
        with writer.as_default(step=epoch + 1):
            for key in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe", "clips_per_second"):
                tf.summary.scalar(key, row[key])
        writer.flush()
    if progress:
        tqdm.write(
            f"epoch {epoch + 1}/{config.epochs}: loss {row['train_loss']:.5f} / {row['val_loss']:.5f}, "
            f"MPJPE {row['train_mpjpe']:.1f} / {row['val_mpjpe']:.1f} mm (train / valid), "
            f"{row['clips_per_second']:.1f} clips/s"
            + (f", 2-D keypoint error {totals[3] / totals[2]:.3f}" if config.keypoint_loss else "")
        )


def nonfinite(
    phase: str, sums: np.ndarray, where: str, finished: int, run_dir: Path, config
) -> TrainingError:
    """The error for a NaN or infinite loss/MPJPE; `finished` epochs have a checkpoint."""
    name, value = ("loss", sums[0] / sums[2]) if not np.isfinite(sums[0]) else ("MPJPE", sums[1] / sums[2])
    kept = (
        f"the checkpoint of epoch {finished} in {run_dir} is kept"
        if finished
        else "no epoch had finished, so there is no checkpoint"
    )
    return TrainingError(
        f"the {phase} {name} became {value} {where}; training stopped and {kept}; look for extreme labels, "
        f"or try a learning rate below {config.learning_rate:g}"
    )
