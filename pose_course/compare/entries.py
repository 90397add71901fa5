"""One entry of the comparison: the data rendered once, a model trained through the project's engine (or its
finished run reused, its interrupted run resumed: the run folder's `state`), evaluated on the valid split;
and the mean-pose baseline's entry.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from pose_course.compare.recipes import BASELINE, Preset, Recipe
from pose_utils.training.runfolder import RunFolder


def _dataset_ready(folder: Path) -> bool:
    return all((folder / f"{split}.h5").is_file() for split in ("train", "valid"))


def render_data(preset: Preset, folder: Path, progress: bool = True) -> Path:
    """Render the preset's dataset into `folder` with make-data (HDF5 only), unless it is already there."""
    from pose_course.datagen import make_config, make_data

    if _dataset_ready(folder):
        return folder
    make_data(make_config(folder, preset=preset.data_preset, format="h5"), progress=progress)
    return folder


def train_config(preset: Preset, recipe: Recipe):
    from pose_utils.training import TrainConfig

    return TrainConfig.from_dict({**recipe.train, "max_train_clips": preset.max_train_clips,
                                  "max_valid_clips": preset.max_valid_clips,
                                  "cache_frames": preset.cache_frames})


def _run_state(run_dir: Path, config) -> str:
    """The run folder's state for this config (`RunFolder.state`): speed settings may differ."""
    from pose_utils.training.config import SPEED_KEYS
    return RunFolder(run_dir).state(config, may_differ=SPEED_KEYS)


def _describe(config, flip_test: bool) -> str:
    from pose_utils.models import model_spec

    extras = [f"{k}={v}" for k, v in config.model_options.items()]
    if config.flip_augment:
        extras.append("left/right flip augmentation")
    if config.roll_augment:
        extras.append(f"rolls up to {config.roll_augment:g} degrees")
    if config.keypoint_loss:
        extras.append(f"2-D keypoint loss ×{config.keypoint_loss:g}")
    if config.loss != "mse":
        extras.append(f"{config.loss} loss")
    if config.lr_schedule != "constant":
        extras.append(f"{config.lr_schedule} learning rate")
    if flip_test:
        extras.append("test-time flips")
    text = model_spec(config.model).description
    return f"`{config.model}` + {', '.join(extras)}" if extras else text


def run_entry(name: str, recipe: Recipe, preset: Preset, data_dir: Path, out_dir: Path,
              progress: bool = True) -> dict:
    """Train (or resume, or reuse) one entry and evaluate it on the valid split.

    Returns its results.json record: mpjpe_mm, p_mpjpe_mm, per_joint_mpjpe_mm {joint: mm}, params,
    train_seconds, epochs, and what it was (model, description, learning_rate, ...).
    """
    from pose_utils.evaluate import evaluate
    from pose_utils.training import train

    if recipe.train.get("keypoint_loss") and not _has_keypoint_labels(data_dir):  # before train() opens it
        # The course's .npy files lack the pelvis positions and intrinsics the 2-D labels come from.
        print(f"{name}: {data_dir} has no 'root' and 'intrinsics' for 2-D keypoint labels; "
              "training it without keypoint_loss")
        recipe = Recipe({**recipe.train, "keypoint_loss": 0.0}, recipe.flip_test)
    config = train_config(preset, recipe)
    run_dir = out_dir / "runs" / name
    state = _run_state(run_dir, config)
    if state == "restart":  # started but killed before its first checkpoint: nothing to keep
        shutil.rmtree(run_dir)
    if state != "done":
        train(data_dir, run_dir, config, resume=state == "resume", progress=progress)
    history = RunFolder(run_dir).read_history()
    metrics = evaluate(data_dir, run_dir, run_dir / "eval", flip_test=recipe.flip_test)
    import keras

    from pose_utils.models import register_layers

    register_layers()  # the saved models use this package's layers (the seed's BatchedLSTM too)
    model = keras.models.load_model(RunFolder(run_dir).model_file, compile=False, safe_mode=True)
    params = model.count_params()
    return {
        "mpjpe_mm": metrics["mpjpe_mm"],
        "p_mpjpe_mm": metrics["p_mpjpe_mm"],
        "per_joint_mpjpe_mm": metrics["per_joint_mpjpe_mm"],
        "params": int(params),
        "train_seconds": float(sum(history["epoch_seconds"])),
        "epochs": len(history["val_mpjpe"]),
        "model": config.model,
        "description": _describe(config, recipe.flip_test),
        "target_transform": config.transform_kind,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "flip_augment": config.flip_augment,
        "model_options": dict(config.model_options),
        "lr_schedule": config.lr_schedule,
        "roll_augment": config.roll_augment,
        "keypoint_loss": config.keypoint_loss,
        "loss": config.loss,
        "flip_test": recipe.flip_test,
        "clips_per_second": float(np.mean(history["clips_per_second"])),
        "reused": state == "done",  # trained by an earlier invocation of the benchmark
        "val_mpjpe_per_epoch_mm": [float(v) for v in history["val_mpjpe"]],
        "n_mpjpe_mm": metrics["n_mpjpe_mm"],
        "pck3d_150mm": metrics["pck3d_150mm"],
    }


def _has_keypoint_labels(data_dir: Path) -> bool:
    """Whether the train split stores what 2-D keypoint labels are projected with (HDF5 layout)."""
    from pose_utils.data import open_split

    with open_split(data_dir, "train") as store:
        return store.has_keypoint_labels


def mean_pose_entry(preset: Preset, data_dir: Path) -> dict:
    """The baseline: the mean training pose (over the clips the models train on) predicted for every frame."""
    from pose_utils.baseline import mean_pose, mean_pose_prediction
    from pose_utils.data import open_split, subset
    from pose_utils.evaluate import compute_metrics

    tic = time.perf_counter()
    with open_split(data_dir, "train") as store:
        mean = mean_pose(store.joints[subset(len(store), preset.max_train_clips)])
    seconds = time.perf_counter() - tic
    with open_split(data_dir, "valid") as store:
        y_true = np.asarray(store.joints, dtype=np.float64)
        metrics = compute_metrics(y_true, mean_pose_prediction(mean, y_true.shape), meta=store.meta)
    return {
        "mpjpe_mm": metrics["mpjpe_mm"],
        "p_mpjpe_mm": metrics["p_mpjpe_mm"],
        "per_joint_mpjpe_mm": metrics["per_joint_mpjpe_mm"],
        "params": 0,
        "train_seconds": seconds,
        "epochs": 0,
        "model": BASELINE,
        "description": "the mean training pose, predicted for every frame (no image is looked at)",
        "n_mpjpe_mm": metrics["n_mpjpe_mm"],
        "pck3d_150mm": metrics["pck3d_150mm"],
    }
