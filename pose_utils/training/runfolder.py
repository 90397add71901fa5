"""The run folder: what a training run writes, how it is read back, and how a resume is checked.

    config.json            TrainConfig.to_dict()
    data.json              what the run was trained on: frame shape, clip counts, folder, units
    target_transform.json  the transform fitted on the training labels
    mean_pose.json         the mean training pose (17, 3) metres: the baseline `evaluate` reports
    checkpoint.json        pointer to the last good checkpoint + the history up to it
    checkpoints/ckpt-E.*   tf.train.Checkpoint: model variables, optimizer state, epoch (nothing pickled)
    history.json           per-epoch lists (HISTORY_KEYS, + KEYPOINT_HISTORY_KEY); MPJPE in mm
    progress.json          where a running run is: {"epoch", "epochs", "phase", "step", "steps"}, rewritten
                           about once a second (notebook 05's sweep shows it while a run trains)
    model.keras            the final model (Keras format, loads in safe mode)
    tb/                    TensorBoard scalars

Everything is written atomically, and the checkpoint before the pointer that names it, so a kill at any
moment leaves the last good state. `tf.train.CheckpointManager` was weighed against `Checkpoints`: its
index file (`checkpoint`) cannot carry the history, so a resume would need a second file written after
it and a kill between the two would leave them disagreeing; one pointer holding both is simpler.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np

from ..baseline import mean_pose
from ..errors import ConfigError, DataError, PoseUtilsError
from ..fileio import read_json, write_json
from ..skeleton import JOINT_NAMES
from .config import RESUMABLE_CHANGES, TrainConfig

PROGRESS_FILE = "progress.json"


def _copy_keras_variables_in_place() -> None:
    """Let TensorFlow's asynchronous checkpoint copy Keras 3 variables more than once.

    Its copy to host memory calls each trackable's `_copy_trackable_to_cpu` inside a tf.function; Keras 3's
    variable makes a new tf.Variable there on every call, which a tf.function allows on the first call
    only (the second asynchronous write of a run fails: "tf.function only supports singleton
    tf.Variables"). The copy of the wrapped tf.Variable is the copy of the Keras variable: the same value,
    kept up to date by TensorFlow's own in-place copy."""
    from keras.src.backend.tensorflow.core import Variable

    if getattr(Variable._copy_trackable_to_cpu, "in_place", False):
        return

    def copy_in_place(self, object_map):
        self.value._copy_trackable_to_cpu(object_map)
        object_map[self] = object_map[self.value]

    copy_in_place.in_place = True
    Variable._copy_trackable_to_cpu = copy_in_place


class ProgressFile:
    """Writes RUN_DIR/progress.json at most every `interval` seconds (and whenever `force` is given)."""

    def __init__(self, run_dir: Path, epochs: int, enabled: bool = True, interval: float = 1.0):
        self.path, self.epochs = Path(run_dir) / PROGRESS_FILE, epochs
        self.enabled, self.interval = enabled, interval
        self._last = -float("inf")

    def update(self, epoch: int, phase: str, step: int, steps: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.interval):
            return
        self._last = now
        write_json(self.path, {"epoch": epoch, "epochs": self.epochs, "phase": phase, "step": step,
                               "steps": steps}, fsync=False)


def read_progress(run_dir: str | os.PathLike) -> dict | None:
    """RUN_DIR/progress.json, or None while there is none (or it cannot be read yet)."""
    try:
        return read_json(Path(run_dir) / PROGRESS_FILE)
    except PoseUtilsError:
        return None


def read_config(run_dir: Path) -> TrainConfig:
    try:
        return TrainConfig.from_dict(read_json(run_dir / "config.json"))
    except ConfigError as e:
        raise ConfigError(f"{run_dir / 'config.json'}: {e}") from None


def resolve_config(run_dir: Path, config, resume: bool) -> TrainConfig:
    """The config to train with: given, saved, or saved + given with only RESUMABLE_CHANGES differing."""
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    has_checkpoint = (run_dir / "checkpoint.json").is_file()
    if not resume:
        if has_checkpoint:
            raise ConfigError(
                f"{run_dir} already holds a training run; pass --resume (resume=True) to continue "
                "it, or choose another output folder"
            )
        return config or TrainConfig()
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"nothing to resume in {run_dir}: no config.json (start it without --resume)")
    saved = read_config(run_dir)
    if has_checkpoint:
        done = read_json(run_dir / "checkpoint.json")["epoch"]
        wanted = (config or saved).epochs
        if wanted < done:
            raise ConfigError(
                f"{run_dir} has already trained {done} epochs; epochs={wanted} cannot be resumed"
            )
    if config is None:
        return saved
    differ = [k for k, v in config.to_dict().items() if v != getattr(saved, k) and k not in RESUMABLE_CHANGES]
    if differ:
        changes = ", ".join(f"{k}: {getattr(saved, k)!r} -> {getattr(config, k)!r}" for k in differ)
        raise ConfigError(
            f"cannot resume {run_dir} with a different config ({changes}); only "
            f"{', '.join(RESUMABLE_CHANGES)} may change"
        )
    return config


def check_data_matches(run_dir: Path, info: dict) -> None:
    saved = read_json(run_dir / "data.json")
    if list(saved["frame_shape"]) != list(info["frame_shape"]):
        (h, w), (sh, sw) = info["frame_shape"], saved["frame_shape"]
        raise DataError(
            f"the data has {h}x{w} frames but the run in {run_dir} was trained on {sh}x{sw} frames"
        )
    for key in ("train_clips", "valid_clips"):
        if saved[key] != info[key]:
            raise DataError(
                f"the data gives {info[key]} {key.replace('_', ' ')} but the run in {run_dir} "
                f"was trained with {saved[key]}; resume on the same data"
            )


def write_mean_pose(path: Path, joints: np.ndarray) -> None:
    write_json(path, {"units": "m", "joints": list(JOINT_NAMES), "mean_pose": mean_pose(joints).tolist()})


def read_mean_pose(run_dir: str | os.PathLike) -> np.ndarray:
    """The run's mean training pose, (17, 3) metres."""
    path = Path(run_dir) / "mean_pose.json"
    pose = np.asarray(read_json(path).get("mean_pose"), dtype=np.float64)
    if pose.shape != (len(JOINT_NAMES), 3):
        raise DataError(f"{path}: mean_pose has shape {pose.shape}, expected (17, 3)")
    return pose


def run_finished(run_dir, epochs: int | None = None) -> bool:
    """True when RUN_DIR holds a finished run: model.keras saved after `epochs` epochs (default: the
    epochs of its config.json). Unreadable or missing files mean not finished."""
    run_dir = Path(run_dir)
    try:
        wanted = epochs if epochs is not None else read_json(run_dir / "config.json")["epochs"]
        history = read_json(run_dir / "history.json")
    except (PoseUtilsError, KeyError, TypeError):
        return False
    return (run_dir / "model.keras").is_file() and len(history.get("val_mpjpe", [])) == wanted


class Checkpoints:
    """checkpoints/ckpt-E.* plus checkpoint.json pointing at the last complete one (written after it).

    background=True: `save` copies the variables and returns; TensorFlow's asynchronous checkpointing
    writes them while the next epoch trains, and a thread of ours then writes the pointer (and whatever
    `after` writes, history.json) once the files are complete. So the order on disk stays checkpoint,
    pointer, history, and a kill before the write ends leaves the previous epoch's state. `wait` joins
    the pending write (and raises its error); `train` calls it before it writes anything else and before
    it reports an error. The engine writes in the background on one replica only (the chief of several
    workers writes in step with them)."""

    def __init__(self, run_dir: Path, checkpoint, chief: bool, background: bool = False):
        self.run_dir, self.checkpoint, self.chief = run_dir, checkpoint, chief
        self.pointer = run_dir / "checkpoint.json"
        self.background = background and chief
        self._pending = None
        self._error: BaseException | None = None
        if self.background:
            _copy_keras_variables_in_place()

    def restore(self) -> dict | None:
        """Load the last good checkpoint; return its pointer record (epoch, history) or None."""
        if not self.pointer.is_file():
            return None
        record = read_json(self.pointer)
        prefix = self.run_dir / record["prefix"]
        try:
            status = self.checkpoint.read(str(prefix))
            status.assert_existing_objects_matched()
            status.expect_partial()  # an asynchronous write also stores its save counter, unused here
        except (ValueError, AssertionError, OSError) as e:  # tf raises NotFoundError (an OSError) too
            raise DataError(f"{prefix}: cannot restore the checkpoint ({e})") from None
        return record

    def save(self, epoch: int, history: dict, after=None) -> None:
        """Checkpoint epoch `epoch`, then the pointer (with `history`), then call `after()`."""
        import shutil
        import tempfile
        import threading

        import tensorflow as tf

        history = {k: list(v) for k, v in history.items()}  # as it is now: the caller goes on appending
        if not self.chief:  # every worker must take part in writing; only the chief keeps it
            tmp = Path(tempfile.mkdtemp(prefix="pose_utils_worker_ckpt_"))
            self.checkpoint.write(str(tmp / "ckpt"))
            shutil.rmtree(tmp, ignore_errors=True)
            return
        prefix = f"checkpoints/ckpt-{epoch}"

        def finish():
            write_json(self.pointer, {"epoch": epoch, "prefix": prefix, "history": history})
            self.remove_stale(keep=prefix)
            if after is not None:
                after()

        if not self.background:
            self.checkpoint.write(str(self.run_dir / prefix))
            finish()
            return
        self.wait()
        options = tf.train.CheckpointOptions(experimental_enable_async_checkpoint=True)
        self.checkpoint.write(str(self.run_dir / prefix), options=options)

        def complete():
            try:
                self.checkpoint.sync()
                finish()
            except BaseException as e:  # raised in the training thread by `wait`
                self._error = e

        self._pending = threading.Thread(target=complete, name="checkpoint-writer", daemon=True)
        self._pending.start()

    def wait(self) -> None:
        """Block until the checkpoint being written in the background is complete; raise its error."""
        if self._pending is not None:
            self._pending.join()
            self._pending = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def remove_stale(self, keep: str | None) -> None:
        """Delete checkpoint files other than `keep` (older epochs, or ones a kill left half-written)."""
        folder = self.run_dir / "checkpoints"
        if not self.chief or not folder.is_dir():
            return
        keep_name = Path(keep).name if keep else None
        for path in folder.iterdir():
            if path.name.split(".")[0] != keep_name:
                with contextlib.suppress(OSError):
                    path.unlink()
