"""pose_utils.training on tiny runs (64×64 toy clips whose brightness encodes the pose, tests/toydata.py)."""

import json
import signal
import subprocess
import time
from types import SimpleNamespace

import numpy as np
import pytest
from toydata import QUIET_ENV, pose_utils_command, run_cli, write_toy_data

from pose_utils.data import subset
from pose_utils.errors import ConfigError, DataError, TrainingError
from pose_utils.evaluate import load_run, predict
from pose_utils.training import HISTORY_KEYS, TrainConfig, train

# The toy run every test compares against: learnable in 10 epochs at this learning rate.
TOY = dict(epochs=10, learning_rate=3e-3, seed=0)
N_TRAIN = 21  # batch 5: the last batch holds one clip, which exercises padding under MirroredStrategy


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
        ({"lr_schedule": "step"}, "lr_schedule must be one of constant, cosine, got 'step'"),
        ({"loss": "l1"}, "loss must be one of mse, mpjpe, got 'l1'"),
        ({"roll_augment": 200}, "roll_augment must be a number of degrees in .0, 180., got 200"),
    ],
)
def test_config_rejects_bad_values_with_a_plain_message(changes, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**changes)


def test_cosine_schedule_falls_from_the_rate_to_its_floor_over_the_run():
    from pose_utils.training.config import COSINE_FLOOR
    from pose_utils.training.loop import learning_rate

    assert learning_rate(TrainConfig(learning_rate=3e-3), steps_per_epoch=10) == 3e-3
    config = TrainConfig(learning_rate=3e-3, epochs=4, lr_schedule="cosine")
    schedule = learning_rate(config, steps_per_epoch=10)
    rates = np.array([float(schedule(step)) for step in range(0, 41)])
    assert rates[0] == pytest.approx(3e-3)
    assert rates[20] == pytest.approx(3e-3 * (1 + COSINE_FLOOR) / 2)  # half way: half way down
    assert rates[40] == pytest.approx(3e-3 * COSINE_FLOOR)
    assert np.all(np.diff(rates) < 0)


def test_a_cosine_run_trains_and_its_optimizer_ends_at_the_floor(toy_dir, toy_run, tmp_path):
    import tensorflow as tf

    from pose_utils.training.config import COSINE_FLOOR
    from pose_utils.training.loop import learning_rate

    _, constant = toy_run
    config = TrainConfig(**{**TOY, "epochs": 2, "lr_schedule": "cosine"})
    history = train(toy_dir, tmp_path / "cosine", config, progress=False)
    assert np.all(np.isfinite(history["val_loss"]))
    assert history["val_loss"] != constant["val_loss"][:2]
    # The schedule reads the optimizer's step counter, which the checkpoint keeps: resuming goes on.
    record = json.loads((tmp_path / "cosine" / "checkpoint.json").read_text())
    prefix = str(tmp_path / "cosine" / record["prefix"])
    [name] = [n for n, _ in tf.train.list_variables(prefix) if n.startswith("optimizer/_iterations")]
    steps_per_epoch = -(-N_TRAIN // config.batch_size)
    step = int(tf.train.load_variable(prefix, name))
    assert step == 2 * steps_per_epoch
    final_rate = float(learning_rate(config, steps_per_epoch)(step))
    assert final_rate == pytest.approx(config.learning_rate * COSINE_FLOOR)


def test_fused_adam_follows_keras_adam_over_100_steps():
    # the engine's update (one fused kernel per variable) against Keras's Adam: two copies of a small
    # model from the same weights, the student's train_step on the same 100 batches
    import keras
    import tensorflow as tf

    from pose_utils.training.fused import FusedAdam, fused_adam_serves
    from pose_utils.training.step import train_step

    def trained(adam):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(64, activation="tanh"),
                                  keras.layers.Dense(3)])
        optimizer = adam(1e-3)
        optimizer.build(model.trainable_variables)
        rng = np.random.default_rng(1)
        step = tf.function(lambda x, y: train_step(model, optimizer, x,
                                                   lambda p: tf.reduce_mean((p - y) ** 2))[0])
        losses = [float(step(tf.constant(rng.normal(size=(8, 20)), tf.float32),
                             tf.constant(rng.normal(size=(8, 3)), tf.float32))) for _ in range(100)]
        return [v.numpy() for v in model.trainable_variables + optimizer.variables], losses

    keras_state, keras_losses = trained(keras.optimizers.Adam)
    fused_state, fused_losses = trained(FusedAdam)
    assert keras_losses[-1] < keras_losses[0]
    np.testing.assert_allclose(fused_losses, keras_losses, rtol=1e-5)
    assert len(fused_state) == len(keras_state)  # the same variables: step count, moments, weights
    for a, b in zip(fused_state, keras_state, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert fused_adam_serves("float32", 1)
    assert not fused_adam_serves("mixed_float16", 1) and not fused_adam_serves("float32", 2)


def test_mpjpe_loss_is_the_metric_with_a_gradient_at_zero_error():
    import tensorflow as tf

    from pose_utils.targets import fit_transform
    from pose_utils.tf_metrics import mpjpe_per_clip

    rng = np.random.default_rng(0)
    labels = rng.normal(0, 0.3, (40, 8, 17, 3)).astype(np.float32)
    labels[..., 0, :] = 0.0  # the pelvis: the same in every label
    owner = SimpleNamespace(transform=fit_transform("standard", labels))
    y = tf.constant(owner.transform.forward(labels[:4]).astype(np.float32))
    pred = tf.Variable(y + tf.random.normal(y.shape, stddev=0.5, seed=1))
    want = np.linalg.norm(owner.transform.inverse(pred.numpy()) - labels[:4], axis=-1).mean(axis=(1, 2))
    inverse = owner.transform.inverse

    def smooth_mpjpe(y, pred):  # what the step minimises with loss="mpjpe"
        return mpjpe_per_clip(inverse(y), inverse(pred), smooth=True)

    np.testing.assert_allclose(smooth_mpjpe(y, pred).numpy(), want, rtol=1e-5)
    exact = tf.Variable(y)  # zero error everywhere: tf.norm's gradient would be NaN here
    with tf.GradientTape() as recorded:
        loss = tf.reduce_sum(smooth_mpjpe(y, exact))
    assert float(loss) == pytest.approx(0.0, abs=1e-5)
    assert np.all(np.isfinite(recorded.gradient(loss, exact).numpy()))


def test_a_run_with_the_mpjpe_loss_learns(toy_dir, tmp_path):
    # With a constant 3e-3 the last epochs of this toy run swing by 10 mm, so the final value would hang on
    # floating-point rounding (the kernels' summation order); the cosine schedule settles them.
    config = TrainConfig(**{**TOY, "loss": "mpjpe", "lr_schedule": "cosine"})
    history = train(toy_dir, tmp_path / "l", config, progress=False)
    assert np.all(np.isfinite(history["train_loss"]))
    assert history["val_mpjpe"][-1] < 0.7 * history["val_mpjpe"][0]  # as the toy run with the MSE


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
    config = TrainConfig(**{**TOY, "epochs": 1})
    again = train(toy_dir, tmp_path / "again", config, progress=False)
    other = train(toy_dir, tmp_path / "other", config.replace(seed=1), progress=False)
    for key in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe"):
        assert again[key] == reference[key][:1]  # bitwise: same process, op determinism on
    assert other["train_loss"] != again["train_loss"]


def test_frames_cached_in_memory_train_the_same_run(toy_dir, toy_run, tmp_path):
    _, reference = toy_run
    cached = train(toy_dir, tmp_path / "cached", TrainConfig(**{**TOY, "epochs": 2, "cache_frames": True}),
                   progress=False)
    for key in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe"):
        assert cached[key] == reference[key][:2]  # bitwise: only where the frames come from differs
    # A speed setting, not part of what is trained: a run may be resumed with it switched off.
    resumed = train(toy_dir, tmp_path / "cached", TrainConfig(**{**TOY, "epochs": 3}), resume=True,
                    progress=False)
    assert resumed["val_mpjpe"][:2] == cached["val_mpjpe"]


# ----------------------------------------------------------------------------- resume


def test_kill_after_an_epoch_then_resume_ends_where_an_uninterrupted_run_ends(toy_dir, toy_run, tmp_path):
    reference_dir, reference = toy_run
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        pose_utils_command("train", "--data", toy_dir, "--out", run_dir, "--epochs", 10, "--lr", "3e-3",
                           "--seed", 0),
        env=QUIET_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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
    with pytest.raises(ConfigError, match="has already trained 10 epochs; epochs=5 cannot be resumed"):
        train(toy_dir, run_dir, TrainConfig(**{**TOY, "epochs": 5}), resume=True)
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


def test_nonfinite_training_loss_stops_naming_epoch_and_step(toy_dir, tmp_path):
    # A linear head and a learning rate of 1e30: the first update makes the weights ~1e30, so the
    # second step's squared error overflows float32 for real. (The seed's sigmoid head saturates instead.)
    config = TrainConfig(model="seed_linear", epochs=2, learning_rate=1e30)
    with pytest.raises(
        TrainingError, match=r"training loss became (inf|nan) at epoch 1, step 2; .*no epoch had"
    ):
        train(toy_dir, tmp_path / "r", config, progress=False)
    left = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert "checkpoint.json" not in left and "history.json" not in left and "model.keras" not in left


def test_nonfinite_loss_after_a_good_epoch_keeps_that_epochs_checkpoint(tmp_path):
    # Epoch 1 sees black frames: only biases move (by ~1e30) and every output stays finite. Then the
    # training frames become noise: the kernels blow up too and the next forward pass overflows (NaN).
    data = write_toy_data(tmp_path / "d", n_train=N_TRAIN, n_valid=4)
    for split, n in (("train", N_TRAIN), ("valid", 4)):
        np.save(data / f"videoframes_clips_{split}.npy", np.zeros((n, 8, 64, 64, 3), np.uint8))
    config = TrainConfig(epochs=1, learning_rate=1e30, batch_size=N_TRAIN)
    run_dir = tmp_path / "r"
    first = train(data, run_dir, config, progress=False)
    noise = np.random.default_rng(0).integers(0, 256, (N_TRAIN, 8, 64, 64, 3), dtype=np.uint8)
    np.save(data / "videoframes_clips_train.npy", noise)
    with pytest.raises(
        TrainingError,
        match=r"became (inf|nan) (at epoch [23], step \d+|after epoch [23]); "
        r"training stopped and the checkpoint of epoch [12] in .* is kept",
    ) as error:
        train(data, run_dir, config.replace(epochs=4), resume=True, progress=False)
    kept = int(str(error.value).split("checkpoint of epoch ")[1].split()[0])
    pointer = json.loads((run_dir / "checkpoint.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    assert (
        pointer["epoch"] == kept == len(history["val_mpjpe"])
        and history["val_mpjpe"][:1] == first["val_mpjpe"]
    )
    assert all(np.isfinite(v).all() for v in history.values())
    assert sorted(p.name.split(".")[0] for p in (run_dir / "checkpoints").iterdir()) == [f"ckpt-{kept}"] * 2
    assert not (run_dir / "model.keras").exists()
    assert load_run(run_dir).model is not None  # the kept checkpoint restores


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
    epochs = 2  # an N-epoch run is a prefix of the 10-epoch reference
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


def _free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_with_two_local_workers_matches_one_device(toy_dir, toy_run, tmp_path):
    # Two processes on localhost ports (TF_CONFIG), one CPU replica each; only the chief writes files.
    _, reference = toy_run
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {**QUIET_ENV, "TF_CONFIG": tf_config}
        cmd = pose_utils_command("train", "--data", toy_dir, "--out", tmp_path / f"worker{index}",
                                 "--epochs", 1, "--lr", TOY["learning_rate"], "--strategy", "multiworker")
        procs.append(
            subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        )
    try:
        errors = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for e in errors]
    assert not (tmp_path / "worker1").exists()  # a non-chief worker leaves nothing behind
    history = json.loads((tmp_path / "worker0" / "history.json").read_text())
    for key in ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe"):
        np.testing.assert_allclose(history[key], reference[key][:1], rtol=0.02, err_msg=key)


def test_seed_tanh_trains_on_raw_metres(toy_dir, tmp_path):
    from pose_utils.data import open_split
    from pose_utils.fileio import read_json

    run = tmp_path / "tanh"
    config = TrainConfig(model="seed_tanh", epochs=2, learning_rate=1e-3)
    history = train(toy_dir, run, config, progress=False)
    assert read_json(run / "target_transform.json")["kind"] == "identity"
    with open_split(toy_dir, "train") as store:
        labels = np.asarray(store.joints)
    # The loss is eq. 2 on the labels themselves: of the order of their squared size in metres.
    assert np.all(np.isfinite(history["train_loss"]))
    assert history["train_loss"][0] < 2 * float(np.mean(labels**2)) + 1.0
    trained = load_run(run)
    with open_split(toy_dir, "valid") as valid:
        predictions = predict(trained.model, valid, trained.transform)
    assert np.all(np.abs(predictions) < 1)


def test_a_finished_run_may_drop_its_checkpoints_and_is_reused_only_with_the_same_code(toy_dir, tmp_path,
                                                                                      monkeypatch):
    from pose_utils.training import runfolder

    run_dir = tmp_path / "lean"
    config = TrainConfig(**{**TOY, "epochs": 1})
    train(toy_dir, run_dir, config, progress=False, keep_checkpoints=False)
    folder = runfolder.RunFolder(run_dir)
    assert folder.has_model() and folder.finished() and not folder.has_checkpoint()
    assert not (run_dir / runfolder.CHECKPOINTS_DIR).exists()
    assert load_run(run_dir).history["val_mpjpe"]  # evaluated from model.keras alone
    settings = {"epochs": 1, "data_dir": str(toy_dir)}
    assert folder.matches(settings)
    assert not folder.matches({**settings, "epochs": 2})
    # the student changes an exercise: the run was trained with other code and is not reused
    monkeypatch.setattr(runfolder, "code_digest", lambda: "0" * 64)
    assert not folder.matches(settings)
    with pytest.raises(ConfigError, match="has not finished"):
        runfolder.RunFolder(tmp_path / "nothing").drop_checkpoints()
    folder.drop_model()  # what a sweep keeps: the history, enough to know the run finished
    assert not folder.has_model() and not folder.finished() and folder.finished(need_model=False)
    with pytest.raises(ConfigError, match="has not finished"):
        folder.drop_model()
