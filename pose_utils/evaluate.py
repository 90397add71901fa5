"""Using a trained run: loading it (`load_run`), predicting with it (`predict`), and its evaluation,
metrics.json and predictions.npz (`evaluate`), with the mean-pose baseline beside the model.

`evaluate(data_dir, run_dir, out_dir)` or `python -m pose_utils evaluate --data DIR --run RUN --out OUT`
predicts every clip of a split with the run's model, maps the predictions back to metres with the run's
target transform, and writes

    OUT/metrics.json     compute_metrics(...) plus where it came from (model, split, run, data)
    OUT/predictions.npz  y_true, y_pred: (N, 8, 17, 3) float32 metres, clip order of the split
                         (plain arrays: np.load(..., allow_pickle=False) reads them)

`compute_metrics` is pure NumPy so the benchmark and the notebooks reuse it on any predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_utils import metrics
from pose_utils.baseline import mean_pose_prediction
from pose_utils.errors import DataError
from pose_utils.fileio import atomic_path, read_json, write_json
from pose_utils.skeleton import JOINT_NAMES, flip_left_right
from pose_utils.training import HISTORY_KEYS, read_mean_pose
from pose_utils.training.runfolder import RunFolder

PCK_THRESHOLD_MM = 150.0  # the usual 3D PCK threshold (Mehta et al., MPI-INF-3DHP)
AUC_STEPS = 31  # thresholds 0, 5, ..., 150 mm
# Metadata keys grouped into per-group MPJPE, and the metrics.json key of each.
GROUP_KEYS = {
    "action": "per_action_mpjpe_mm",
    "camera": "per_camera_mpjpe_mm",
    "subject": "per_subject_mpjpe_mm",
}


def _group_label(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def compute_metrics(y_true_m, y_pred_m, meta: dict | None = None, mean_pose_m=None) -> dict:
    """Every evaluation number for predictions in metres, reported in millimetres.

    Inputs: y_true_m, y_pred_m of shape (N, 8, 17, 3), metres; meta: per-clip arrays of length N (the
    keys of GROUP_KEYS give per-group MPJPE; others are ignored); mean_pose_m: (17, 3) metres, the mean
    training pose, predicted for every frame as a baseline. Returns a JSON-ready dict: mpjpe_mm
    (Protocol 1), p_mpjpe_mm (Protocol 2, Procrustes per pose), n_mpjpe_mm (scale-aligned), mpjve_mm
    (velocity error, mm per frame), pck3d_150mm and auc (fractions, 0-150 mm), per_joint_mpjpe_mm
    {joint: mm} in skeleton order, per-group MPJPE, baseline_mean_pose_mpjpe_mm, num_clips.
    """
    y_true = np.asarray(y_true_m, dtype=np.float64) * 1000.0
    y_pred = np.asarray(y_pred_m, dtype=np.float64) * 1000.0
    if y_true.shape != y_pred.shape or y_true.ndim != 4 or y_true.shape[2:] != (len(JOINT_NAMES), 3):
        raise ValueError(
            f"y_true and y_pred must both have shape (N, frames, 17, 3), got {y_true.shape} "
            f"and {y_pred.shape}"
        )
    if len(y_true) == 0:
        raise ValueError("no clips to evaluate")
    per_joint = metrics.per_joint_mpjpe(y_true, y_pred).tolist()
    result = {
        "num_clips": int(len(y_true)),
        "mpjpe_mm": metrics.mpjpe(y_true, y_pred),
        "p_mpjpe_mm": metrics.p_mpjpe(y_true, y_pred),
        "n_mpjpe_mm": metrics.n_mpjpe(y_true, y_pred),
        "mpjve_mm": metrics.mean_velocity_error(y_true, y_pred),
        "pck3d_150mm": metrics.pck3d(y_true, y_pred, PCK_THRESHOLD_MM),
        "auc": metrics.auc(y_true, y_pred, PCK_THRESHOLD_MM, AUC_STEPS),
        "per_joint_mpjpe_mm": dict(zip(JOINT_NAMES, per_joint, strict=True)),
    }
    clip_errors = metrics.joint_errors(y_true, y_pred).mean(axis=(1, 2))  # (N,) mm
    for key, out_key in GROUP_KEYS.items():
        values = (meta or {}).get(key)
        if values is None:
            continue
        values = np.asarray(values)
        if values.shape[:1] != (len(y_true),):
            raise ValueError(
                f"meta[{key!r}] has {values.shape[:1]} entries, expected one per clip ({len(y_true)})"
            )
        labels = np.array([_group_label(v) for v in values.reshape(len(values), -1)[:, 0]])
        result[out_key] = {g: float(clip_errors[labels == g].mean()) for g in sorted(set(labels.tolist()))}
    if mean_pose_m is not None:
        baseline = mean_pose_prediction(mean_pose_m, y_true.shape) * 1000.0
        result["baseline_mean_pose_mpjpe_mm"] = metrics.mpjpe(y_true, baseline)
    return result


# ----------------------------------------------------------------------------- using a run


# The mean-pose baseline, scored with the model's own metrics: the bar on Figure 4 (notebook 03) and
# beside every metric (notebook 04) is this one definition.
def baseline_metrics(run_dir, y_true_m, meta: dict | None = None) -> dict:
    """Every evaluation number (evaluate.compute_metrics) for the run's mean-pose baseline: the mean
    training pose (RUN/mean_pose.json) predicted for every frame. y_true_m: (N, 8, 17, 3) metres."""
    y_true = np.asarray(y_true_m, dtype=np.float64)
    return compute_metrics(y_true, mean_pose_prediction(read_mean_pose(run_dir), y_true.shape), meta=meta)


def mean_pose_baseline_mm(run_dir, data_dir, split: str = "valid",
                          max_clips: int | None = None) -> float:
    """MPJPE (mm) of the run's mean-pose baseline on `split` (`baseline_metrics`' mpjpe_mm).

    max_clips: the same evenly spread subset of clips the run validated on (TrainConfig.max_valid_clips).
    """
    from pose_utils.data import open_split, subset

    units = read_json(RunFolder(run_dir).config_file).get("units", "m")
    with open_split(data_dir, split, units) as store:
        joints = np.asarray(store.joints)[subset(len(store), max_clips)]
    return baseline_metrics(run_dir, joints)["mpjpe_mm"]


@dataclass
class Run:
    """A trained run folder: model (keras.Model), transform, config, history, mean_pose (17, 3) metres."""

    run_dir: Path
    model: object
    transform: object
    config: object  # training.TrainConfig
    history: dict
    mean_pose: np.ndarray
    data: dict


def load_run(run_dir) -> Run:
    """Load a run: model.keras in Keras safe mode, or, for an unfinished run, the last checkpoint."""
    import keras
    import tensorflow as tf

    from pose_utils.models import build_model, register_layers
    from pose_utils.targets import load_transform
    from pose_utils.training.distribute import precision_policy

    register_layers()  # a model with augmentation layers loads only once Keras knows them
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not folder.is_run():
        raise DataError(f"{run_dir}: not a run folder (no {folder.config_file.name})")
    config = folder.read_config()
    data = folder.read_data()
    transform = load_transform(folder.transform_file)
    if folder.has_model():
        try:
            model = keras.models.load_model(folder.model_file, compile=False, safe_mode=True)
        except (ValueError, OSError, TypeError) as e:
            raise DataError(f"{folder.model_file}: cannot load the model ({e})") from None
    elif folder.has_checkpoint():
        record = read_json(folder.checkpoint_file)
        with precision_policy(config.precision):
            model = build_model(config.model, frame_size=int(data["frame_shape"][0]), **config.model_options)
        status = tf.train.Checkpoint(model_variables=list(model.variables)).read(
            str(run_dir / record["prefix"])
        )
        status.expect_partial()  # the optimizer state is not needed to predict
    else:
        raise DataError(f"{run_dir}: no model.keras and no checkpoint; the run has not finished an epoch")
    history = folder.read_history() if folder.history_file.is_file() else {k: [] for k in HISTORY_KEYS}
    return Run(run_dir, model, transform, config, history, read_mean_pose(run_dir), data)


def predict(model, store, transform, batch_size: int = 32, indices=None,
            flip_test: bool = False) -> np.ndarray:
    """Poses for the clips `indices` (default all) of `store`: (N, 8, 17, 3) float32 metres, in order.

    flip_test: also predict every clip mirrored left-right, mirror that prediction back
    (`skeleton.flip_left_right`: x -> -x, left/right labels swapped) and average the two. Twice the
    prediction time; exact as a test-time augmentation because the principal point is the frame centre.
    """
    import tensorflow as tf

    from pose_utils.data import tf_dataset

    step = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), reduce_retracing=True)
    outputs, mirrored = [], []
    for x, _ in tf_dataset(store, batch_size, shuffle=False, indices=indices):
        outputs.append(step(x).numpy())
        if flip_test:
            mirrored.append(step(tf.reverse(x, axis=[3])).numpy())  # (B, T, H, W, C): axis 3 is the width
    if not outputs:
        return np.zeros((0, store.num_frames, len(JOINT_NAMES), 3), np.float32)
    poses = transform.inverse(np.concatenate(outputs))
    if flip_test:
        poses = (poses + flip_left_right(transform.inverse(np.concatenate(mirrored)))) / 2
    return poses.astype(np.float32)


def evaluate(
    data_dir, run_dir, out_dir, split: str = "valid", units: str | None = None, batch_size: int = 32,
    flip_test: bool = False,
) -> dict:
    """Predict `split` of DATA_DIR with the run in RUN_DIR; write OUT_DIR/metrics.json and predictions.npz.

    units: the stored labels' unit ("m" or "mm"; default: the one the run was trained with).
    flip_test: average each prediction with that of the mirrored clip (`predict`).
    Returns the metrics dict as written.
    """
    from pose_utils.data import open_split

    run = load_run(run_dir)
    units = units or run.config.units
    with open_split(data_dir, split, units) as store:
        trained = tuple(run.data["frame_shape"])
        if store.frame_shape != trained:
            raise DataError(
                f"{data_dir}: {split} frames are {store.frame_shape[0]}x{store.frame_shape[1]} but "
                f"the run in {run_dir} was trained on {trained[0]}x{trained[1]} frames"
            )
        y_pred = predict(run.model, store, run.transform, batch_size=batch_size, flip_test=flip_test)
        y_true = np.asarray(store.joints, dtype=np.float32)
        result = compute_metrics(y_true, y_pred, meta=store.meta, mean_pose_m=run.mean_pose)
    result.update(
        {
            "model": run.config.model,
            "split": split,
            "flip_test": flip_test,
            "epochs": len(run.history.get("val_mpjpe", [])),
            "run_dir": str(Path(run_dir).resolve()),
            "data_dir": str(Path(data_dir).resolve()),
        }
    )
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "predictions.npz") as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez_compressed(f, y_true=y_true, y_pred=y_pred)
    write_json(out_dir / "metrics.json", result)
    return result


def main(args) -> int:
    """`python -m pose_utils evaluate --data DIR --run RUN_DIR --out OUT [--split valid] [--units m]
    [--flip-test]`."""
    result = evaluate(args.data, args.run, args.out, split=args.split, units=args.units,
                      flip_test=args.flip_test)
    print(
        f"{args.split}: {result['num_clips']} clips, MPJPE {result['mpjpe_mm']:.1f} mm "
        f"(P-MPJPE {result['p_mpjpe_mm']:.1f}, "
        f"mean-pose baseline {result['baseline_mean_pose_mpjpe_mm']:.1f}); "
        f"wrote {Path(args.out) / 'metrics.json'} and predictions.npz"
    )
    return 0
