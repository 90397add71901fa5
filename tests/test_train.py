"""pose_utils.train on tiny runs (64×64 toy clips whose brightness encodes the pose, tests/toydata.py)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from toydata import write_toy_data

from pose_utils.data import epoch_order
from pose_utils.errors import ConfigError, DataError, TrainingError
from pose_utils.train import HISTORY_KEYS, TrainConfig, load_run, predict, subset, train

# The toy run every test compares against: learnable in 10 epochs at this learning rate.
TOY = dict(epochs=10, learning_rate=3e-3, seed=0)
N_TRAIN = 21  # batch 5: the last batch holds one clip, which exercises padding under MirroredStrategy


def run_cli(*args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TQDM_DISABLE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pose_utils", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def final_weights(run_dir):
    return load_run(run_dir).model.get_weights()


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return write_toy_data(tmp_path_factory.mktemp("toy"), n_train=N_TRAIN, n_valid=10)


@pytest.fixture(scope="module")
def toy_run(toy_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "toy"
    history = train(toy_dir, run_dir, TrainConfig(**TOY), progress=False)
    return run_dir, history


# ----------------------------------------------------------------------------- config


def test_config_defaults_are_the_reports_recipe():
    c = TrainConfig()
    assert (c.model, c.epochs, c.batch_size, c.learning_rate) == ("seed", 30, 5, 1e-4)
    assert (c.precision, c.strategy, c.transform_kind) == ("float32", "default", "minmax")
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_config_rejects_unknown_keys_by_name():
    with pytest.raises(ConfigError, match="unknown training config key.*batchsize.*lr"):
        TrainConfig.from_dict({"batchsize": 5, "lr": 1e-3, "epochs": 2})


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"batch_size": "5"}, "batch_size must be a positive integer, got '5'"),
        ({"learning_rate": float("inf")}, "learning_rate must be a positive finite number, got inf"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"seed": -1}, "seed must be an integer"),
        ({"precision": "fp8"}, "precision must be one of float32, mixed_bfloat16, mixed_float16, got 'fp8'"),
        ({"strategy": "tpu"}, "strategy must be one of"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"cpu_replicas": 2}, "cpu_replicas=2 needs strategy 'mirrored'"),
        ({"target_transform": "log"}, "target_transform must be one of"),
        ({"flip_augment": "yes"}, "flip_augment must be true or false"),
    ],
)
def test_config_rejects_bad_values_with_a_plain_message(changes, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**changes)


def test_subset_spreads_over_the_split():
    assert subset(10, None).tolist() == list(range(10))
    assert subset(10, 50).tolist() == list(range(10))
    picked = subset(100, 5)
    assert picked.tolist() == [0, 25, 50, 74, 99]


# ----------------------------------------------------------------------------- a real run


def test_history_schema(toy_run):
    run_dir, history = toy_run
    assert list(history) == list(HISTORY_KEYS)
    assert all(len(v) == TOY["epochs"] for v in history.values())
    assert all(isinstance(x, float) and np.isfinite(x) for v in history.values() for x in v)
    assert json.loads((run_dir / "history.json").read_text()) == history
    assert all(x > 0 for x in history["clips_per_second"] + history["epoch_seconds"])


def test_loss_falls_and_beats_the_mean_pose_on_a_learnable_toy_set(toy_run, toy_dir):
    run_dir, h = toy_run
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert h["val_mpjpe"][-1] < 0.7 * h["val_mpjpe"][0]
    mean_pose = np.asarray(json.loads((run_dir / "mean_pose.json").read_text())["mean_pose"])
    train_joints = np.load(toy_dir / "joint_3d_clips_train.npy")
    np.testing.assert_allclose(mean_pose, train_joints.reshape(-1, 17, 3).mean(axis=0), atol=1e-6)
    valid = np.load(toy_dir / "joint_3d_clips_valid.npy")
    baseline_mm = 1000 * np.linalg.norm(valid - mean_pose, axis=-1).mean()
    assert h["val_mpjpe"][-1] < 0.7 * baseline_mm


def test_run_folder_layout(toy_run):
    run_dir, _ = toy_run
    for name in (
        "config.json",
        "data.json",
        "target_transform.json",
        "mean_pose.json",
        "checkpoint.json",
        "history.json",
        "model.keras",
    ):
        assert (run_dir / name).is_file(), name
    assert TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text())) == TrainConfig(**TOY)
    data = json.loads((run_dir / "data.json").read_text())
    assert (data["frame_shape"], data["train_clips"], data["valid_clips"]) == ([64, 64], N_TRAIN, 10)
    pointer = json.loads((run_dir / "checkpoint.json").read_text())
    assert pointer["epoch"] == TOY["epochs"]
    assert pointer["history"] == json.loads((run_dir / "history.json").read_text())
    # Only the last checkpoint is kept, and no temporary files are left behind.
    assert sorted(p.name.split(".")[0] for p in (run_dir / "checkpoints").iterdir()) == ["ckpt-10", "ckpt-10"]
    assert not [p for p in run_dir.rglob(".*tmp*")]
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))


def test_load_run_and_predict_reproduce_the_last_validation_mpjpe(toy_run, toy_dir):
    from pose_utils.data import open_split

    run_dir, history = toy_run
    run = load_run(run_dir)
    assert run.config == TrainConfig(**TOY) and run.history == history and run.mean_pose.shape == (17, 3)
    with open_split(toy_dir, "valid") as store:
        pred = predict(run.model, store, run.transform, batch_size=4)
        truth = store.joints
    assert pred.shape == (10, 8, 17, 3) and pred.dtype == np.float32
    mpjpe_mm = 1000 * np.linalg.norm(pred - truth, axis=-1).mean()
    assert mpjpe_mm == pytest.approx(history["val_mpjpe"][-1], rel=1e-4)


def test_same_seed_same_run_other_seed_other_run(toy_dir, toy_run, tmp_path):
    _, reference = toy_run
    config = TrainConfig(**{**TOY, "epochs": 2})
    again = train(toy_dir, tmp_path / "again", config, progress=False)
    other = train(toy_dir, tmp_path / "other", config.replace(seed=1), progress=False)
    for key in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe"):
        assert again[key] == reference[key][:2]  # bitwise: same process, op determinism on
    assert other["train_loss"] != again["train_loss"]


# ----------------------------------------------------------------------------- resume


def test_kill_after_an_epoch_then_resume_ends_where_an_uninterrupted_run_ends(toy_dir, toy_run, tmp_path):
    reference_dir, reference = toy_run
    run_dir = tmp_path / "killed"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pose_utils",
            "train",
            "--data",
            toy_dir,
            "--out",
            run_dir,
            "--epochs",
            "10",
            "--lr",
            "3e-3",
            "--seed",
            "0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    pointer = run_dir / "checkpoint.json"
    deadline = time.monotonic() + 240
    try:
        while not pointer.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # mid-way through epoch 2, or wherever it is now
    finally:
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, stderr[-2000:]
    done = json.loads(pointer.read_text())["epoch"]
    assert 1 <= done < 10
    assert not (run_dir / "model.keras").exists()

    resumed = train(toy_dir, run_dir, resume=True, progress=False)  # config None: the saved one
    for key in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe"):
        np.testing.assert_allclose(resumed[key], reference[key], rtol=1e-5, err_msg=key)
    for a, b in zip(final_weights(run_dir), final_weights(reference_dir), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == sorted(
        p.name for p in (reference_dir / "checkpoints").iterdir()
    )


def test_resume_of_a_finished_run_returns_its_history_and_can_extend_it(toy_dir, tmp_path):
    config = TrainConfig(**{**TOY, "epochs": 1})
    first = train(toy_dir, tmp_path / "r", config, progress=False)
    assert train(toy_dir, tmp_path / "r", config, resume=True, progress=False) == first
    longer = train(toy_dir, tmp_path / "r", config.replace(epochs=2), resume=True, progress=False)
    assert len(longer["val_mpjpe"]) == 2 and longer["val_mpjpe"][:1] == first["val_mpjpe"]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["epochs"] == 2


def test_resume_refuses_a_different_config_or_data(toy_run, toy_dir, tmp_path):
    run_dir, _ = toy_run
    with pytest.raises(ConfigError, match=r"different config \(learning_rate: 0.003 -> 0.001\)"):
        train(toy_dir, run_dir, TrainConfig(**{**TOY, "learning_rate": 1e-3}), resume=True)
    small = write_toy_data(tmp_path / "small", n_train=N_TRAIN, n_valid=10, size=32)
    with pytest.raises(DataError, match="32x32 frames but the run .* was trained on 64x64"):
        train(small, run_dir, resume=True)
    fewer = write_toy_data(tmp_path / "fewer", n_train=12, n_valid=10)
    with pytest.raises(DataError, match="12 train clips .* trained with 21"):
        train(fewer, run_dir, resume=True)
    with pytest.raises(ConfigError, match="already holds a training run; pass --resume"):
        train(toy_dir, run_dir, TrainConfig(**TOY))
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(toy_dir, tmp_path / "empty", resume=True)


# ----------------------------------------------------------------------------- failures


def _with_one_huge_label(folder: Path, split: str, clip: int) -> None:
    """Make one clip's labels 1e36 mm: their squared error overflows float32 (a real inf, no mock)."""
    path = folder / f"joint_3d_clips_{split}.npy"
    joints = np.load(path)
    joints[clip] = 1e36
    np.save(path, joints)


@pytest.mark.filterwarnings("ignore:.*not root-relative")
def test_nonfinite_loss_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    # Identity targets in mm: a label of 1e36 mm squares to infinity in float32.
    config = TrainConfig(epochs=1, units="mm", target_transform="identity", learning_rate=1e-3)
    bad = write_toy_data(tmp_path / "bad", n_train=N_TRAIN, n_valid=10, units="mm")
    _with_one_huge_label(bad, "train", clip=7)
    step = int(np.nonzero(epoch_order(N_TRAIN, 0, 0) == 7)[0][0]) // 5 + 1
    with pytest.raises(
        TrainingError, match=rf"became (inf|nan) at epoch 1, step {step}; .*no epoch had finished"
    ):
        train(bad, tmp_path / "first", config, progress=False)
    assert not (tmp_path / "first" / "checkpoint.json").exists()

    # One good epoch, then the data goes bad under the run: epoch 2 stops, epoch 1 stays.
    data = write_toy_data(tmp_path / "good", n_train=N_TRAIN, n_valid=10, units="mm")
    run_dir = tmp_path / "second"
    first = train(data, run_dir, config, progress=False)
    _with_one_huge_label(data, "train", clip=3)
    step = int(np.nonzero(epoch_order(N_TRAIN, 0, 1) == 3)[0][0]) // 5 + 1
    with pytest.raises(TrainingError, match=rf"at epoch 2, step {step}; .*checkpoint of epoch 1 .* is kept"):
        train(data, run_dir, config.replace(epochs=2), resume=True, progress=False)
    assert json.loads((run_dir / "checkpoint.json").read_text())["epoch"] == 1
    assert json.loads((run_dir / "history.json").read_text()) == first
    assert sorted(p.name.split(".")[0] for p in (run_dir / "checkpoints").iterdir()) == ["ckpt-1", "ckpt-1"]
    assert load_run(run_dir).model is not None  # the kept checkpoint restores


@pytest.mark.filterwarnings("ignore:.*not root-relative")
def test_nonfinite_validation_loss_stops_before_checkpointing(tmp_path):
    config = TrainConfig(epochs=1, units="mm", target_transform="identity")
    data = write_toy_data(tmp_path / "d", n_train=6, n_valid=4, units="mm")
    _with_one_huge_label(data, "valid", clip=2)
    with pytest.raises(TrainingError, match="validation loss became (inf|nan) after epoch 1"):
        train(data, tmp_path / "r", config, progress=False)
    assert not (tmp_path / "r" / "checkpoint.json").exists()


def test_cpu_replicas_after_tensorflow_started_is_a_plain_error(toy_dir, tmp_path):
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # make sure the runtime is up in this process
    with pytest.raises(ConfigError, match="cpu_replicas=3 must be set before TensorFlow runs its first"):
        train(toy_dir, tmp_path / "r", TrainConfig(epochs=1, strategy="mirrored", cpu_replicas=3))


# ----------------------------------------------------------------------------- precision and strategies


def test_mixed_bfloat16_trains_and_keeps_a_float32_head(toy_dir, tmp_path):
    import keras

    history = train(
        toy_dir,
        tmp_path / "bf16",
        TrainConfig(**{**TOY, "epochs": 2, "precision": "mixed_bfloat16"}),
        progress=False,
    )
    assert all(np.isfinite(v).all() for v in history.values())
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    model = load_run(tmp_path / "bf16").model  # saved and reloaded in safe mode
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers}
    assert policies["conv"] == policies["lstm"] == "mixed_bfloat16"
    assert policies["head"] == "float32" and model.output.dtype == "float32"


def test_mixed_float16_on_cpu_without_xla_is_a_plain_error(toy_dir, tmp_path):
    with pytest.raises(ConfigError, match="mixed_float16 on a CPU needs jit_compile"):
        train(toy_dir, tmp_path / "r", TrainConfig(epochs=1, precision="mixed_float16"))


def test_mirrored_over_two_logical_cpus_matches_one_device(toy_dir, toy_run, tmp_path):
    # A fresh process: logical CPUs must be configured before TensorFlow runs anything. Batches of 5
    # split 3 + 2 over the replicas, and the last batch of each epoch (1 clip) is padded for replica 2.
    _, reference = toy_run
    run_dir = tmp_path / "mirrored"
    epochs = 4  # an N-epoch run is a prefix of the 10-epoch reference
    done = run_cli(
        "train",
        "--data",
        toy_dir,
        "--out",
        run_dir,
        "--epochs",
        epochs,
        "--lr",
        TOY["learning_rate"],
        "--strategy",
        "mirrored",
        "--cpu-replicas",
        2,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    mirrored = json.loads((run_dir / "history.json").read_text())
    for key in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe"):
        np.testing.assert_allclose(mirrored[key], reference[key][:epochs], rtol=0.02, err_msg=key)
