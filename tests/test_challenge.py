"""pose_course.challenge: handing in a finished run, whole or not at all."""

import pytest

from pose_course.challenge import CHALLENGE_RUN, hand_in_run
from pose_utils.errors import DataError
from pose_utils.fileio import write_json
from pose_utils.training.runfolder import RunFolder


def finished_run(folder, epochs=2, model=b"weights"):
    run = RunFolder(folder)
    folder.mkdir(parents=True)
    write_json(run.config_file, {"epochs": epochs, "model": "challenge"})
    write_json(run.history_file, {"val_mpjpe": [300.0] * epochs, "train_mpjpe": [310.0] * epochs})
    write_json(run.transform_file, {"kind": "standard"})
    run.model_file.write_bytes(model)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "ckpt-2.data").write_bytes(b"adam state")
    return folder


def test_a_finished_run_is_copied_without_its_checkpoints_and_replaces_the_last_hand_in(tmp_path):
    dest = tmp_path / "repo" / CHALLENGE_RUN
    first = hand_in_run(finished_run(tmp_path / "a"), dest)
    assert first == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["model.keras", "config.json", "history.json", RunFolder(dest).transform_file.name])
    hand_in_run(finished_run(tmp_path / "b", model=b"better weights"), dest)
    assert RunFolder(dest).model_file.read_bytes() == b"better weights"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["challenge"]  # no staging or old folder left


def test_an_unfinished_run_is_refused_and_the_last_hand_in_kept(tmp_path):
    dest = tmp_path / "repo" / CHALLENGE_RUN
    hand_in_run(finished_run(tmp_path / "a"), dest)
    half = finished_run(tmp_path / "b", epochs=3)
    write_json(RunFolder(half).history_file, {"val_mpjpe": [300.0]})  # 1 of 3 epochs
    with pytest.raises(DataError, match="no finished run"):
        hand_in_run(half, dest)
    with pytest.raises(DataError, match="no finished run"):
        hand_in_run(tmp_path / "nothing", dest)
    assert RunFolder(dest).model_file.read_bytes() == b"weights"
