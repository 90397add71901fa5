"""The `train` and `evaluate` commands: help, bad flags (one plain line, exit 2), and a real run."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toydata import run_cli, write_toy_data

from pose_course.cli import main

TRAIN_FLAGS = (
    "--data",
    "--out",
    "--model",
    "--epochs",
    "--batch-size",
    "--lr",
    "--seed",
    "--resume",
    "--precision",
    "--strategy",
    "--cpu-replicas",
    "--units",
    "--max-train-clips",
    "--max-valid-clips",
    "--flip-augment",
    "--jit-compile",
    "--lr-schedule",
    "--loss",
    "--roll-augment",
    "--model-option",
)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return write_toy_data(tmp_path_factory.mktemp("toy"), n_train=8, n_valid=5, size=32)


@pytest.mark.parametrize(
    "command, flags",
    [("train", TRAIN_FLAGS), ("evaluate", ("--data", "--run", "--out", "--split", "--units", "--flip-test"))],
)
def test_help_lists_every_flag(command, flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in flags), [f for f in flags if f not in out]


def test_console_script_help():
    script = Path(sys.executable).with_name("pose-utils")
    if not script.exists():
        pytest.skip("the pose-utils console script is not installed in this environment")
    done = subprocess.run([script, "train", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--cpu-replicas" in done.stdout


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--epochs", "0"], "--epochs: expected a positive integer, got 0"),
        (["--batch-size", "five"], "--batch-size: expected a positive integer, got 'five'"),
        (["--lr", "nan"], "--lr: expected a positive finite number, got nan"),
        (["--precision", "fp8"], "--precision: invalid choice: 'fp8'"),
        (["--strategy", "tpu"], "--strategy: invalid choice: 'tpu'"),
        (["--loss", "l1"], "--loss: invalid choice: 'l1'"),
        (["--lr-schedule", "step"], "--lr-schedule: invalid choice: 'step'"),
        (["--model-option", "color_jitter"],
         "--model-option: expected NAME=VALUE (e.g. color_jitter=0.2), got"),
    ],
)
def test_bad_train_flags_are_refused_by_the_parser(flags, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "d", "--out", "o", *flags])
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--seed", "-1"], "error: seed must be an integer in [0, 2**32), got -1"),
        (["--cpu-replicas", "2"], "error: cpu_replicas=2 needs strategy 'mirrored', got 'default'"),
        (["--model", "resnet"], "error: unknown model 'resnet'; choose one of:"),
        (["--roll-augment", "-5"], "error: roll_augment must be a number of degrees in [0, 180], got -5.0"),
        (["--model", "cnn_lstm", "--model-option", "colour_jitter=0.2"],
         "error: model 'cnn_lstm' does not take option(s) colour_jitter"),
        (["--model", "cnn_lstm", "--model-option", "zoom=2"],
         "error: zoom must be a number in [0, 1), got 2"),
    ],
)
def test_bad_train_values_give_one_plain_line(flags, words, toy_dir, tmp_path, capsys):
    assert main(["train", "--data", str(toy_dir), "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(words) and err.count("\n") == 1 and "Traceback" not in err


def test_missing_data_and_run_folders_give_one_plain_line(tmp_path, capsys):
    assert (
        main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"), "--epochs", "1"])
        == 2
    )
    assert capsys.readouterr().err == f"error: {tmp_path / 'nowhere'}: no such folder\n"
    assert (
        main(["evaluate", "--data", str(tmp_path), "--run", str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    )
    assert capsys.readouterr().err == f"error: {tmp_path}: not a run folder (no config.json)\n"


def test_train_resume_and_evaluate_from_the_command_line(toy_dir, tmp_path, capsys):
    run_dir, out = tmp_path / "run", tmp_path / "eval"
    done = run_cli("train", "--data", toy_dir, "--out", run_dir, "--epochs", 1, "--batch-size", 4,
                   "--max-train-clips", 6)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 1/1: loss" in done.stderr + done.stdout and "validation MPJPE" in done.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["epochs"], config["batch_size"], config["max_train_clips"]) == (1, 4, 6)

    # --resume alone keeps the saved config; a flag that changes it is refused.
    assert main(["train", "--data", str(toy_dir), "--out", str(run_dir), "--resume", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot resume") and "(learning_rate: 0.0001 -> 0.5)" in err
    assert main(["train", "--data", str(toy_dir), "--out", str(run_dir), "--resume", "--epochs", "2"]) == 0
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["val_mpjpe"]) == 2

    assert main(["evaluate", "--data", str(toy_dir), "--run", str(run_dir), "--out", str(out)]) == 0
    assert "valid: 5 clips, MPJPE" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_clips"] == 5 and metrics["mpjpe_mm"] == pytest.approx(
        history["val_mpjpe"][-1], rel=1e-4
    )
    shutil.rmtree(out)
    assert (
        main(
            ["evaluate", "--data", str(toy_dir), "--run", str(run_dir), "--out", str(out), "--split", "train"]
        )
        == 0
    )
    assert json.loads((out / "metrics.json").read_text())["num_clips"] == 8


def test_a_file_damaged_mid_training_gives_one_plain_line(tmp_path, capsys):
    """The damage shows only when tf.data reads the clip; the user still gets one plain line."""
    import h5py
    from toydata import write_toy_h5

    folder = write_toy_h5(tmp_path / "data", n_train=6, n_valid=4, size=16)
    path = folder / "train.h5"
    with h5py.File(path, "a") as f:  # lzf, so damaged bytes fail to decompress rather than read as pixels
        frames = f["frames"][...]
        frames[:] = np.arange(16, dtype=np.uint8)[:, None, None]
        del f["frames"]
        f.create_dataset("frames", data=frames, chunks=(1, 8, 16, 16, 3), compression="lzf")
    with h5py.File(path) as f:
        chunk = f["frames"].id.get_chunk_info(3)  # clips 0 and 5 are read when the file is opened
    data = bytearray(path.read_bytes())
    data[chunk.byte_offset : chunk.byte_offset + chunk.size] = bytes(chunk.size)
    path.write_bytes(bytes(data))
    code = main(["train", "--data", str(folder), "--out", str(tmp_path / "r"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {path}: cannot read clip") and "corrupt" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
