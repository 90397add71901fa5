"""The model benchmark (pose_course/compare/) end to end on the tiny preset: 64x64 clips, one epoch."""

import json

import numpy as np
import pytest

from pose_course.compare import (
    BASELINE,
    PRESETS,
    REPORT_PER_JOINT_MPJPE_MM,
    get_preset,
    markdown,
    run_benchmark,
    train_config,
)
from pose_utils.errors import ConfigError
from pose_utils.models import build_model, compared_models
from pose_utils.skeleton import JOINT_NAMES

REQUIRED = {"mpjpe_mm", "p_mpjpe_mm", "per_joint_mpjpe_mm", "params", "train_seconds", "epochs"}


@pytest.fixture(scope="module")
def tiny_benchmark(tiny_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    results = run_benchmark("tiny", out, data_dir=tiny_data_dir, progress=False)
    return out, results


def test_results_json_holds_every_model_with_the_agreed_keys(tiny_benchmark):
    out, results = tiny_benchmark
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))  # what was returned is what was written
    models = saved["models"]
    assert set(compared_models()) | {BASELINE, "cnn_tcn_aug", "cnn_lstm_tuned"} == set(models)
    assert list(models)[:2] == [BASELINE, "seed"]
    for name, record in models.items():
        assert REQUIRED <= set(record), name
        assert list(record["per_joint_mpjpe_mm"]) == list(JOINT_NAMES)
        assert all(np.isfinite(v) and v >= 0 for v in record["per_joint_mpjpe_mm"].values())
        assert record["p_mpjpe_mm"] <= record["mpjpe_mm"] + 1e-6  # Procrustes can only lower the error
        # MPJPE is the mean of the per-joint errors (all joints, frames and clips weigh the same).
        assert record["mpjpe_mm"] == pytest.approx(np.mean(list(record["per_joint_mpjpe_mm"].values())))
    for name in compared_models():
        assert models[name]["epochs"] == 1
        assert models[name]["train_seconds"] > 0
        assert models[name]["params"] == build_model(name, frame_size=64).count_params()
    assert models[BASELINE]["params"] == 0 and models[BASELINE]["epochs"] == 0
    assert models["cnn_tcn_aug"]["flip_augment"] is True
    tuned = models["cnn_lstm_tuned"]
    assert (tuned["lr_schedule"], tuned["loss"], tuned["flip_test"]) == ("cosine", "mpjpe", True)
    assert tuned["model_options"]["bidirectional"] is True
    assert "test-time flips" in tuned["description"]
    # Evaluated with test-time flips: its results agree with its eval folder's metrics.json.
    metrics = json.loads((out / "runs" / "cnn_lstm_tuned" / "eval" / "metrics.json").read_text())
    assert metrics["flip_test"] is True and metrics["mpjpe_mm"] == pytest.approx(tuned["mpjpe_mm"])
    assert saved["data"]["frame_size"] == 64
    assert saved["data"]["valid_subjects"] and not set(saved["data"]["valid_subjects"]) & set(
        saved["data"]["train_subjects"])  # held-out subjects


def test_the_mean_pose_baseline_agrees_with_the_training_engine(tiny_benchmark):
    out, results = tiny_benchmark
    # train() writes the mean training pose of the same clips; evaluate() scores it on the valid split.
    for name in ("seed", "cnn_tcn"):
        evaluated = json.loads((out / "runs" / name / "eval" / "metrics.json").read_text())
        baseline = evaluated["baseline_mean_pose_mpjpe_mm"]
        assert results["models"][BASELINE]["mpjpe_mm"] == pytest.approx(baseline)
        assert results["models"][name]["mpjpe_mm"] == pytest.approx(evaluated["mpjpe_mm"])


def test_table_and_chart_are_written(tiny_benchmark):
    out, results = tiny_benchmark
    table = (out / "results.md").read_text()
    assert table == markdown(results)
    for name in results["models"]:
        assert f"`{name}`" in table
    assert "not Human3.6M" in table
    assert f"{REPORT_PER_JOINT_MPJPE_MM[-1]:.2f}" in table  # the report's RWrist next to ours
    assert (out / "per_joint.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerunning_reuses_finished_runs(tiny_benchmark, tiny_data_dir):
    out, results = tiny_benchmark
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/model.keras")}
    assert len(stamps) == len(results["models"]) - 1
    again = run_benchmark("tiny", out, data_dir=tiny_data_dir, progress=False)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing was trained again
    for name, record in results["models"].items():
        assert again["models"][name]["mpjpe_mm"] == pytest.approx(record["mpjpe_mm"])
        if name != BASELINE:
            assert again["models"][name]["train_seconds"] == record["train_seconds"]
            assert (record["reused"], again["models"][name]["reused"]) == (False, True)
    assert f"reused {len(results['models']) - 1} finished run(s)" in markdown(again)


def test_runs_saved_before_a_config_key_existed_are_reused(tiny_benchmark, tiny_data_dir, tmp_path):
    """A config.json written before lr_schedule / loss / roll_augment / keypoint_loss / cache_frames
    existed reads as their defaults (cache_frames, a speed setting, may differ from the preset's)."""
    import shutil

    out, _ = tiny_benchmark
    shutil.copytree(out / "runs", tmp_path / "runs")
    old = tmp_path / "runs" / "seed" / "config.json"
    config = json.loads(old.read_text())
    new_keys = ("lr_schedule", "loss", "roll_augment", "keypoint_loss", "cache_frames")
    old.write_text(json.dumps({k: v for k, v in config.items() if k not in new_keys}))
    again = run_benchmark("tiny", tmp_path, data_dir=tiny_data_dir, progress=False)
    assert all(again["models"][name]["reused"] for name in again["models"] if name != BASELINE)


def test_the_tuned_entry_trains_without_2d_labels_on_the_course_layout(tiny_benchmark, tiny_data_dir,
                                                                        tmp_path, capsys):
    import shutil

    from pose_course.compare import run_entry

    _, results = tiny_benchmark
    assert results["models"]["cnn_lstm_tuned"]["keypoint_loss"] == 3.0  # on HDF5 data, with root and K
    npy = tmp_path / "npy"
    npy.mkdir()
    for path in tiny_data_dir.glob("*.npy"):  # the course's four files only: no root, no intrinsics
        shutil.copy(path, npy / path.name)
    preset = get_preset("tiny")
    record = run_entry("cnn_lstm_tuned", preset.entries()["cnn_lstm_tuned"], preset, npy, tmp_path,
                       progress=False)
    assert record["keypoint_loss"] == 0.0 and np.isfinite(record["mpjpe_mm"])
    assert "without keypoint_loss" in capsys.readouterr().out


def test_a_run_folder_with_another_configuration_is_refused(tiny_benchmark, tiny_data_dir, tmp_path):
    out, _ = tiny_benchmark
    config = json.loads((out / "runs" / "seed" / "config.json").read_text())
    target = tmp_path / "runs" / "seed"
    target.mkdir(parents=True)
    (target / "config.json").write_text(json.dumps({**config, "epochs": 7}))
    with pytest.raises(ConfigError, match="another configuration"):
        run_benchmark("tiny", tmp_path, data_dir=tiny_data_dir, progress=False)


def test_presets_and_bad_names():
    assert {"quick", "full"} <= set(PRESETS)
    with pytest.raises(ConfigError, match="unknown benchmark preset 'fast'.*quick"):
        get_preset("fast")
    for preset in PRESETS.values():
        entries = preset.entries()
        assert set(compared_models()) <= set(entries)
        configs = {name: train_config(preset, r) for name, r in entries.items()}
        for name in ("seed", "seed_tanh", "seed_linear"):  # the seed's stack trains with the report's recipe
            assert (configs[name].learning_rate, configs[name].batch_size) == (1e-4, 5)
            assert configs[name].epochs == configs["seed"].epochs
        assert configs["seed_tanh"].transform_kind == "identity"  # raw metres, as the report's code
