"""pose_utils.evaluate: metric values on known inputs, and metrics.json recomputed from predictions.npz."""

import json
import shutil

import numpy as np
import pytest
from toydata import write_toy_data, write_toy_h5

from pose_utils.errors import DataError
from pose_utils.evaluate import compute_metrics, evaluate
from pose_utils.skeleton import JOINT_NAMES
from pose_utils.training import TrainConfig, train

METRIC_KEYS = {
    "num_clips",
    "mpjpe_mm",
    "p_mpjpe_mm",
    "n_mpjpe_mm",
    "mpjve_mm",
    "pck3d_150mm",
    "auc",
    "per_joint_mpjpe_mm",
}
PROVENANCE_KEYS = {"model", "split", "flip_test", "epochs", "run_dir", "data_dir"}


@pytest.fixture(scope="module")
def h5_run(tmp_path_factory):
    """A 3-epoch run on the HDF5 toy set with subject / action / camera metadata (32×32 frames)."""
    root = tmp_path_factory.mktemp("eval")
    data = write_toy_h5(root / "data")
    history = train(data, root / "run", TrainConfig(epochs=3, learning_rate=3e-3), progress=False)
    return data, root / "run", history


# ----------------------------------------------------------------------------- compute_metrics


def test_compute_metrics_on_a_known_offset():
    rng = np.random.default_rng(0)
    y_true = rng.normal(0, 0.3, (3, 8, 17, 3))
    y_pred = y_true + np.array([0.012, 0.0, 0.0])  # every joint 12 mm off along x
    m = compute_metrics(y_true, y_pred)
    assert set(m) == METRIC_KEYS
    assert m["num_clips"] == 3
    assert m["mpjpe_mm"] == pytest.approx(12.0)
    assert m["p_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)  # a translation is aligned away
    assert m["mpjve_mm"] == pytest.approx(0.0, abs=1e-9)  # a constant offset has no velocity error
    assert m["n_mpjpe_mm"] <= m["mpjpe_mm"] + 1e-9
    assert m["pck3d_150mm"] == 1.0
    assert m["auc"] == pytest.approx(28 / 31)  # 12 mm is below 15, 20, ..., 150 mm: 28 of 31
    assert list(m["per_joint_mpjpe_mm"]) == list(JOINT_NAMES)
    assert np.allclose(list(m["per_joint_mpjpe_mm"].values()), 12.0)
    json.dumps(m)  # JSON-ready


def test_compute_metrics_groups_and_mean_pose_baseline():
    rng = np.random.default_rng(1)
    y_true = rng.normal(0, 0.3, (4, 8, 17, 3))
    offsets = np.array([0.01, 0.02, 0.03, 0.04])[:, None, None, None]  # clip i is off by (i+1)*10 mm in z
    y_pred = y_true + offsets * np.array([0, 0, 1.0])
    meta = {
        "action": np.array(["walk", "run", "walk", "run"]),
        "camera": np.array([0, 0, 1, 1]),
        "subject": np.array([b"S1", b"S1", b"S1", b"S9"]),
        "speed": np.ones(4),
    }
    mean_pose = rng.normal(0, 0.3, (17, 3))
    m = compute_metrics(y_true, y_pred, meta=meta, mean_pose_m=mean_pose)
    assert m["per_action_mpjpe_mm"] == pytest.approx({"run": 30.0, "walk": 20.0})
    assert m["per_camera_mpjpe_mm"] == pytest.approx({"0": 15.0, "1": 35.0})
    assert m["per_subject_mpjpe_mm"] == pytest.approx({"S1": 20.0, "S9": 40.0})
    expected = 1000 * np.linalg.norm(y_true - mean_pose, axis=-1).mean()
    assert m["baseline_mean_pose_mpjpe_mm"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "shape_true, shape_pred, words",
    [
        ((2, 8, 17, 3), (2, 8, 16, 3), "same shape|must both have shape"),
        ((0, 8, 17, 3), (0, 8, 17, 3), "no clips"),
        ((8, 17, 3), (8, 17, 3), "must both have shape"),
    ],
)
def test_compute_metrics_rejects_bad_shapes(shape_true, shape_pred, words):
    with pytest.raises(ValueError, match=words):
        compute_metrics(np.zeros(shape_true), np.zeros(shape_pred))


# ----------------------------------------------------------------------------- evaluate


def test_metrics_json_is_recomputed_from_predictions_npz(h5_run, tmp_path):
    data, run_dir, history = h5_run
    written = evaluate(data, run_dir, tmp_path / "out")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(written))
    with np.load(tmp_path / "out" / "predictions.npz", allow_pickle=False) as npz:
        y_true, y_pred = npz["y_true"], npz["y_pred"]
    assert y_true.shape == y_pred.shape == (9, 8, 17, 3) and y_pred.dtype == np.float32
    import h5py

    with h5py.File(data / "valid.h5") as f:
        np.testing.assert_array_equal(y_true, f["joints"][()])
        meta = {
            k: f[k].asstr()[()] if f[k].dtype.kind == "O" else f[k][()]
            for k in ("subject", "action", "camera")
        }
    with h5py.File(data / "train.h5") as f:
        mean_pose = f["joints"][()].reshape(-1, 17, 3).mean(axis=0)
    again = compute_metrics(y_true, y_pred, meta=meta, mean_pose_m=mean_pose)
    assert metrics.keys() - PROVENANCE_KEYS == again.keys()
    for key, value in again.items():  # pytest.approx does not nest: compare dicts one level down
        assert metrics[key] == (
            pytest.approx(value)
            if not isinstance(value, dict)
            else {k: pytest.approx(v) for k, v in value.items()}
        ), key
    assert set(metrics) >= METRIC_KEYS | {
        "baseline_mean_pose_mpjpe_mm",
        "per_action_mpjpe_mm",
        "per_camera_mpjpe_mm",
        "per_subject_mpjpe_mm",
    }
    assert metrics["per_action_mpjpe_mm"].keys() == {"jump", "run", "walk"}
    assert (metrics["model"], metrics["split"], metrics["epochs"]) == ("seed", "valid", 3)
    # The same number the training loop recorded for the last epoch.
    assert metrics["mpjpe_mm"] == pytest.approx(history["val_mpjpe"][-1], rel=1e-4)


def test_evaluate_needs_only_the_split_it_evaluates(h5_run, tmp_path):
    data, run_dir, _ = h5_run
    only_valid = tmp_path / "only_valid"
    only_valid.mkdir()
    shutil.copy(data / "valid.h5", only_valid / "valid.h5")
    full = evaluate(data, run_dir, tmp_path / "a")
    alone = evaluate(only_valid, run_dir, tmp_path / "b")
    assert alone["baseline_mean_pose_mpjpe_mm"] == full["baseline_mean_pose_mpjpe_mm"]
    assert alone["mpjpe_mm"] == full["mpjpe_mm"]


def test_an_unfinished_run_is_evaluated_from_its_checkpoint(h5_run, tmp_path):
    data, run_dir, _ = h5_run
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished)
    (unfinished / "model.keras").unlink()
    assert evaluate(data, unfinished, tmp_path / "a")["mpjpe_mm"] == pytest.approx(
        evaluate(data, run_dir, tmp_path / "b")["mpjpe_mm"], rel=1e-6
    )


def test_evaluate_errors_are_plain(h5_run, tmp_path):
    data, run_dir, _ = h5_run
    other_size = write_toy_data(tmp_path / "other", n_train=3, n_valid=3, size=16)
    with pytest.raises(DataError, match="valid frames are 16x16 but the run .* was trained on 32x32"):
        evaluate(other_size, run_dir, tmp_path / "out")
    with pytest.raises(DataError, match="not a run folder"):
        evaluate(data, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_flip_test_is_exactly_mirror_equivariant(tmp_path):
    """Predicting a mirrored clip with flip_test gives the mirror image of the clip's flip_test pose."""
    import h5py

    from pose_utils import build_model
    from pose_utils.data import open_split
    from pose_utils.evaluate import predict
    from pose_utils.skeleton import flip_left_right
    from pose_utils.targets import fit_transform

    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 32, 32, 3), dtype=np.uint8)
    folders = {}
    for name, clip_frames in (("plain", frames), ("mirrored", frames[:, :, :, ::-1])):
        folders[name] = write_toy_h5(tmp_path / name, n_train=3, n_valid=3)
        with h5py.File(folders[name] / "valid.h5", "r+") as f:
            f["frames"][...] = clip_frames
    model = build_model("cnn_lstm", frame_size=32, input_pool=1)  # untrained: no symmetry of its own
    head = model.get_layer("head")
    head.kernel.assign(head.kernel * 100)  # outputs far from the mean pose, which is nearly symmetric
    poses = {}
    for name, folder in folders.items():
        with open_split(folder, "valid") as store:
            transform = fit_transform("standard", store.joints)
            poses[name] = predict(model, store, transform, flip_test=True)
            if name == "plain":
                without = predict(model, store, transform)
    np.testing.assert_allclose(poses["mirrored"], flip_left_right(poses["plain"]), atol=1e-5)
    assert not np.allclose(poses["plain"], without, atol=1e-3)  # the flip changed something
    assert not np.allclose(poses["plain"], flip_left_right(poses["plain"]), atol=1e-3)


def test_evaluate_records_flip_test(h5_run, tmp_path):
    data, run_dir, _ = h5_run
    assert evaluate(data, run_dir, tmp_path / "a")["flip_test"] is False
    assert evaluate(data, run_dir, tmp_path / "b", flip_test=True)["flip_test"] is True

