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

Everything is written atomically, and the checkpoint before the pointer that names it (checkpoints.py),
so a kill at any moment leaves the last good state.

This module is the one home of the run folder: its file names (the constants below), reading it back,
and the questions asked of it: is this a run (`RunFolder.is_run`), is it finished (`finished`), was it
trained with these settings and on that data (`matches`), and may a run of this configuration reuse,
resume or restart it (`state`). Training, evaluation, notebook 05's sweep and the model comparison all ask
here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from pose_utils.baseline import mean_pose
from pose_utils.errors import ConfigError, DataError, PoseUtilsError
from pose_utils.fileio import read_json, write_json
from pose_utils.skeleton import JOINT_NAMES
from pose_utils.training.config import RESUMABLE_CHANGES, TrainConfig

CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
TRANSFORM_FILE = "target_transform.json"
MEAN_POSE_FILE = "mean_pose.json"
CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINTS_DIR = "checkpoints"
HISTORY_FILE = "history.json"
PROGRESS_FILE = "progress.json"
MODEL_FILE = "model.keras"
TENSORBOARD_DIR = "tb"


def code_digest() -> str:
    """SHA-256 of pose_utils' Python sources (paths and contents): which code a run was trained with,
    so that a run trained before a student fixed an exercise is never reused as if it were current."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class RunFolder:
    """A run folder by its path: where each file is, what it holds, and what state the run is in."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config_file = self.path / CONFIG_FILE
        self.data_file = self.path / DATA_FILE
        self.transform_file = self.path / TRANSFORM_FILE
        self.mean_pose_file = self.path / MEAN_POSE_FILE
        self.checkpoint_file = self.path / CHECKPOINT_FILE
        self.history_file = self.path / HISTORY_FILE
        self.progress_file = self.path / PROGRESS_FILE
        self.model_file = self.path / MODEL_FILE

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def is_run(self) -> bool:
        """Whether a run has started here (it writes config.json first)."""
        return self.config_file.is_file()

    def has_model(self) -> bool:
        """Whether the final model is saved (model.keras)."""
        return self.model_file.is_file()

    def has_checkpoint(self) -> bool:
        return self.checkpoint_file.is_file()

    def read_config(self) -> TrainConfig:
        try:
            return TrainConfig.from_dict(read_json(self.config_file))
        except ConfigError as e:
            raise ConfigError(f"{self.config_file}: {e}") from None

    def read_data(self) -> dict:
        """What the run was trained on: frame_shape, train_clips, valid_clips, data_dir, units."""
        return read_json(self.data_file)

    def read_history(self) -> dict:
        return read_json(self.history_file)

    def checkpointed_epochs(self) -> int:
        """The epochs the last good checkpoint holds (0 without one)."""
        return int(read_json(self.checkpoint_file)["epoch"]) if self.has_checkpoint() else 0

    def finished(self, epochs: int | None = None, need_model: bool = True) -> bool:
        """True when the run is finished: model.keras saved after `epochs` epochs (default: the epochs of
        its config.json); need_model=False: the history of every epoch is enough (a sweep's run, whose
        weights were dropped). Unreadable or missing files mean not finished."""
        try:
            wanted = epochs if epochs is not None else read_json(self.config_file)["epochs"]
            history = self.read_history()
        except (PoseUtilsError, KeyError, TypeError):
            return False
        return (self.has_model() or not need_model) and len(history.get("val_mpjpe", [])) == wanted

    def matches(self, settings: dict) -> bool:
        """Whether the saved config.json agrees with every key of `settings` it holds, the run was
        trained with the code there is now (`code_digest`) and, when settings name a data_dir, on that
        folder. Unreadable files mean no."""
        try:
            config = read_json(self.config_file)
            data = self.read_data()
        except PoseUtilsError:
            return False
        trained_on = data.get("data_dir")
        same = data.get("code") == code_digest()
        same = same and all(config.get(k) == v for k, v in settings.items() if k in config)
        if "data_dir" in settings:
            same = same and trained_on == str(Path(settings["data_dir"]).resolve())
        return same

    def drop_checkpoints(self) -> None:
        """Delete the checkpoints and their pointer of a finished run (its model.keras stays): the
        optimiser's state is twice the weights, which a sweep of many runs need not keep."""
        import shutil

        if not self.has_model():
            raise ConfigError(f"{self.path}: the run has not finished; its checkpoints are what resumes it")
        with contextlib.suppress(FileNotFoundError):
            self.checkpoint_file.unlink()
        shutil.rmtree(self.path / CHECKPOINTS_DIR, ignore_errors=True)

    def drop_model(self) -> None:
        """Delete model.keras of a finished run whose history is all that is wanted (notebook 05's sweep
        reads histories; the seed's model is 0.3 GB)."""
        if not self.finished():
            raise ConfigError(f"{self.path}: the run has not finished; its model is not a sweep's to drop")
        self.model_file.unlink()

    def state(self, config: TrainConfig, may_differ=()) -> str:
        """What a run of `config` can do with this folder: "new" (no run here), "done" (finished with this
        config), "resume" (a checkpoint of it), "restart" (started, no checkpoint yet). A run of another
        configuration (keys outside `may_differ` differ) is a ConfigError: it is never overwritten."""
        if not self.is_run():
            return "new"
        # Through TrainConfig, so a run saved before a config key existed reads as that key's default.
        saved = self.read_config().to_dict()
        if any(saved[k] != v for k, v in config.to_dict().items() if k not in may_differ):
            raise ConfigError(
                f"{self.path} holds a run with another configuration; delete it or choose another folder"
            )
        if self.finished(config.epochs):
            return "done"
        return "resume" if self.has_checkpoint() else "restart"


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


def resolve_config(run_dir: Path, config, resume: bool) -> TrainConfig:
    """The config to train with: given, saved, or saved + given with only RESUMABLE_CHANGES differing."""
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    folder = RunFolder(run_dir)
    has_checkpoint = folder.has_checkpoint()
    if not resume:
        if has_checkpoint:
            raise ConfigError(
                f"{run_dir} already holds a training run; pass --resume (resume=True) to continue "
                "it, or choose another output folder"
            )
        return config or TrainConfig()
    if not folder.is_run():
        raise ConfigError(f"nothing to resume in {run_dir}: no {CONFIG_FILE} (start it without --resume)")
    saved = folder.read_config()
    if has_checkpoint:
        done = folder.checkpointed_epochs()
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
    saved = RunFolder(run_dir).read_data()
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
    path = RunFolder(run_dir).mean_pose_file
    pose = np.asarray(read_json(path).get("mean_pose"), dtype=np.float64)
    if pose.shape != (len(JOINT_NAMES), 3):
        raise DataError(f"{path}: mean_pose has shape {pose.shape}, expected (17, 3)")
    return pose


def run_finished(run_dir, epochs: int | None = None) -> bool:
    """True when RUN_DIR holds a finished run (`RunFolder.finished`)."""
    return RunFolder(run_dir).finished(epochs)
