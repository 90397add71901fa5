"""Grading the model a student trained (`grade --hidden-data`): real runs, real Keras files, the real sandbox.

A tiny course (one notebook, no checks) so that only the model part runs. Submissions: a run trained by
the engine (the instructor's challenge model, 2 epochs on the tiny preset), a model never trained (what a
train_step that never applies its gradients leaves: cnn_frame's initial weights), a hostile one whose
package searches every readable path for the hidden labels, and bad models (no run folder, a Python
Lambda, over the parameter budget, over the size limit, outputs of the wrong shape, NaN outputs, too
slow). Everything lives in pytest's temporary folders.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pose_course.cells import nbgrader_metadata
from pose_course.instructor.grading import sandbox
from pose_course.instructor.grading.grade import grade
from pose_course.instructor.grading.model_grade import ModelRule, points_for
from pose_utils.errors import ConfigError
from pose_utils.skeleton import JOINT_NAMES
from pose_utils.training.runfolder import TRANSFORM_FILE

pytestmark = [pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable())),
              pytest.mark.slow]

RULE = ModelRule(points=10, full_at_mm=150.0, zero_at_mm="mean_pose", max_parameters=1_000_000,
                 max_model_mb=12, predict_seconds=30, batch_size=8)

# Runs inside the sandbox when the predicting process imports the student's pose_utils: looks for the
# hidden labels everywhere it can read, by name and by content, and prints what it found to stderr
# (logs/model.stderr.log); then predicts like any other model.
HOSTILE = '''
import os, sys
hits = []
for top in ("/", ):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not (root == "/" and d in ("proc", "sys", "dev"))]
        for f in files:
            if f.startswith(("joint_3d_clips", "videoframes_clips")) or f in ("train.h5", "valid.h5"):
                hits.append(os.path.join(root, f))
for guess in ({hidden!r}, {hidden!r} + "/valid.h5", {hidden!r} + "/joint_3d_clips_valid.npy"):
    try:
        hits.append((guess, os.listdir(guess) if os.path.isdir(guess) else len(open(guess, "rb").read())))
    except OSError as e:
        pass
print("HOSTILE-FOUND", hits, file=sys.stderr)
'''


def _write_run(folder: Path, model, transform) -> None:
    from pose_utils.targets import save_transform

    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    save_transform(folder / TRANSFORM_FILE, transform)
    (folder / "config.json").write_text("{}")


def _student(base: Path, name: str, init: str = "") -> Path:
    repo = base / name
    (repo / "pose_utils").mkdir(parents=True)
    (repo / "pose_utils" / "__init__.py").write_text(init)
    return repo


def _plain_model(frame_size: int, out_shape=(8, 17, 3), units: int = 51, extra: int = 0, lam: bool = False):
    import keras

    x = keras.Input((8, frame_size, frame_size, 3))
    h = keras.layers.TimeDistributed(keras.layers.AveragePooling2D(4))(x)
    h = keras.layers.Reshape((8, -1))(h)
    if extra:
        h = keras.layers.Dense(extra)(h)
    if lam:
        h = keras.layers.Lambda(lambda t: t * 2.0)(h)
    h = keras.layers.Dense(units)(h)
    return keras.Model(x, keras.layers.Reshape(out_shape)(h))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    import keras

    from pose_course.cli import main as cli
    from pose_utils.data import open_split
    from pose_utils.models import build_model
    from pose_utils.targets import fit_transform
    from pose_utils.training import TrainConfig, train

    base = tmp_path_factory.mktemp("model_grading")
    data, hidden = base / "data", base / "hidden"
    # the hidden clips in the course's .npy layout, the training data in HDF5
    for folder, extra in ((data, ["--seed", "0", "--format", "h5"]),
                          (hidden, ["--seed", "7", "--hidden-subjects", "--format", "npy"])):
        assert cli(["make-data", "--out", str(folder), "--preset", "tiny", "--workers", "1", *extra]) == 0
    course = base / "course"
    (course / "notebooks").mkdir(parents=True)
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_markdown_cell("YOUR ANSWER HERE", metadata={
                    "tags": ["answer"], "nbgrader": nbgrader_metadata("why", 1, answer=True)})]
    nbformat.write(nb, str(course / "notebooks" / "01_intro.ipynb"))

    subs = base / "submissions"
    trained = _student(subs, "trained")
    # the instructor's answer to the challenge (models/challenge.py), trained by the engine
    config = TrainConfig(model="challenge", epochs=2, batch_size=4, learning_rate=1e-3, seed=0)
    train(data, trained / "runs" / "challenge", config, progress=False, keep_checkpoints=False)

    with open_split(data, "train") as store:
        joints = np.asarray(store.joints)
        frame_size = store.frame_size
    keras.utils.set_random_seed(0)
    _write_run(_student(subs, "untrained") / "runs" / "challenge",
               build_model("cnn_frame", frame_size=frame_size), fit_transform("standard", joints))
    identity = fit_transform("identity", joints)
    _write_run(_student(subs, "hostile", HOSTILE.format(hidden=str(hidden.resolve()))) / "runs" / "challenge",
               _plain_model(frame_size), identity)
    _student(subs, "no_run")
    _write_run(_student(subs, "lambda") / "runs" / "challenge", _plain_model(frame_size, lam=True), identity)
    _write_run(_student(subs, "too_many_weights") / "runs" / "challenge",
               _plain_model(frame_size, extra=1500), identity)  # 1.23 M weights, 4.9 MB
    big = _student(subs, "too_big") / "runs" / "challenge"
    big.mkdir(parents=True)
    (big / "model.keras").write_bytes(np.random.default_rng(0).bytes(13 * 1024 * 1024))
    _write_run(_student(subs, "wrong_shape") / "runs" / "challenge",
               _plain_model(frame_size, out_shape=(8, 51)), identity)
    nan = _plain_model(frame_size)
    nan.set_weights([np.full_like(w, np.nan) for w in nan.get_weights()])
    _write_run(_student(subs, "nan") / "runs" / "challenge", nan, identity)
    _write_run(_student(subs, "slow", "import time\ntime.sleep(600)\n") / "runs" / "challenge",
               _plain_model(frame_size), identity)

    rule = RULE
    out = base / "grades"
    results = grade(sorted(subs.iterdir()), out, course, jobs=2, execute_notebooks=False,
                    hidden_data=hidden, model_rule=rule)
    return {r["name"]: r for r in results}, out, subs, course, hidden


def test_trained_and_untrained_models_are_scored_against_the_hidden_labels(graded):
    results, out, *_ = graded
    for name in ("trained", "untrained"):
        m = results[name]["model"]
        assert m["problem"] is None, m
        assert 0 < m["p_mpjpe_mm"] <= m["mpjpe_mm"] < 2000 and len(m["per_joint_mm"]) == 17
        assert m["earned"] == points_for(m["mpjpe_mm"], RULE.points, m["full_at_mm"], m["zero_at_mm"])
        assert results[name]["total"] == m["earned"] and results[name]["max"] == RULE.points
        assert m["zero_at_mm"] == m["baselines"]["mean pose"] > 0
        assert 0 < m["parameters"] <= RULE.max_parameters and m["seconds"] < RULE.predict_seconds
    # never trained: its outputs are the standardised targets' zero, near the training mean pose
    untrained = results["untrained"]["model"]
    assert untrained["earned"] < RULE.points / 2
    feedback = (out / "trained" / "feedback.md").read_text()
    assert "## Your model on the hidden clips" in feedback
    assert all(f"| {joint} |" in feedback for joint in JOINT_NAMES)  # the per-joint table
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert float(rows["trained"]["model_mpjpe_mm"]) == pytest.approx(results["trained"]["model"]["mpjpe_mm"],
                                                                     abs=0.05)
    assert float(rows["lambda"]["model"]) == 0 and rows["lambda"]["model_mpjpe_mm"] == ""
    board = (out / "leaderboard.md").read_text()
    assert not any(f"| {name} |" in board for name in results)  # pseudonyms only
    pseudonym = results["trained"]["model"]["pseudonym"]
    assert pseudonym in board and pseudonym in feedback


@pytest.mark.parametrize("name, words", [
    ("no_run", "no run folder runs/challenge/"),
    ("lambda", "does not load in Keras's safe mode"),
    ("too_many_weights", "over the budget of 1,000,000"),
    ("too_big", "over the 12 MiB limit"),
    ("wrong_shape", "expected floats of shape (16, 8, 17, 3)"),
    ("nan", "NaN or infinite values"),
    ("slow", "longer than 30 s"),
])
def test_a_bad_model_gets_one_line_and_no_model_points(graded, name, words):
    results, out, *_ = graded
    m = results[name]["model"]
    assert m["earned"] == 0 and words in m["problem"], m["problem"]
    assert any(p["code"] == "model" and words in p["line"] for p in results[name]["problems"])
    assert words in (out / name / "feedback.md").read_text()


def test_the_hidden_labels_are_out_of_reach_of_the_submission(graded):
    import ast

    results, out, subs, course, hidden = graded
    log = (out / "hostile" / "logs" / "model.stderr.log").read_text()
    found = [ln for ln in log.splitlines() if ln.startswith("HOSTILE-FOUND")]
    assert len(found) == 1, log[-2000:]  # it ran
    hits = ast.literal_eval(found[0].split(" ", 1)[1])
    # Dataset files it may see elsewhere on the machine (students' data) are not the hidden clips: none of
    # its finds lies in the hidden folder, and opening that folder by name gave nothing.
    assert not [h for h in hits if str(hidden.resolve()) in str(h)], hits
    assert results["hostile"]["model"]["problem"] is None  # and its model was scored like any other


def test_grading_again_gives_the_same_numbers(graded, tmp_path):
    results, out, subs, course, hidden = graded
    again = grade([subs / "trained", subs / "wrong_shape"], tmp_path / "out", course, jobs=1,
                  execute_notebooks=False, hidden_data=hidden, model_rule=RULE)
    for r in again:
        before, now = results[r["name"]]["model"], r["model"]
        assert (now["mpjpe_mm"] is None) == (before["mpjpe_mm"] is None)
        if now["mpjpe_mm"] is not None:
            assert abs(now["mpjpe_mm"] - before["mpjpe_mm"]) <= 0.1
        assert now["earned"] == before["earned"] and now["problem"] == before["problem"]


def test_the_instructors_run_sets_full_points_and_the_same_run_handed_in_earns_them(graded, tmp_path):
    # The instructor's reference: the run the trained submission holds (the instructor's challenge model).
    results, out, subs, course, hidden = graded
    instructors_run = str(subs / "trained" / "runs" / "challenge")
    rule = ModelRule(points=10, full_at_mm="reference", reference=instructors_run, reference_factor=1.1,
                     zero_at_mm=100_000, max_model_mb=12, predict_seconds=30)
    again = {r["name"]: r for r in grade([subs / "trained", subs / "untrained"], tmp_path / "out", course,
                                        jobs=1, execute_notebooks=False, hidden_data=hidden, model_rule=rule)}
    m = again["trained"]["model"]
    reference = m["baselines"]["the instructor's model"]
    assert abs(reference - m["mpjpe_mm"]) <= 0.1  # the same run, predicted outside and inside the sandbox
    assert m["full_at_mm"] == pytest.approx(1.1 * reference, abs=1e-3) and m["earned"] == 10
    u = again["untrained"]["model"]
    assert u["earned"] == points_for(u["mpjpe_mm"], 10, u["full_at_mm"], 100_000)
    assert f"{reference:.1f}" in (tmp_path / "out" / "untrained" / "feedback.md").read_text()


def test_bad_rules_and_hidden_folders_are_plain_errors(graded, tmp_path):
    results, out, subs, course, hidden = graded
    rule_file = tmp_path / "rule.json"
    rule_file.write_text(json.dumps({"points": 5, "full_at_mm": 200, "zero_at_mm": 100}))
    with pytest.raises(ConfigError, match="zero_at_mm must be"):
        ModelRule.read(rule_file)
    rule_file.write_text(json.dumps({"pionts": 5}))
    with pytest.raises(ConfigError, match="unknown: pionts"):
        ModelRule.read(rule_file)
    with pytest.raises(ConfigError, match="reference naming the instructor's run"):
        ModelRule(full_at_mm="reference").check()
    with pytest.raises(ConfigError, match="not a finished run folder"):
        grade([subs / "no_run"], tmp_path / "r", course, execute_notebooks=False, hidden_data=hidden,
              model_rule=ModelRule(full_at_mm="reference", reference=str(tmp_path)))
    with pytest.raises(ConfigError, match="inside the submission"):
        ModelRule(run="../elsewhere").check()
    inside = tmp_path / "sub"
    shutil.copytree(subs / "no_run", inside)
    (inside / "labels").mkdir()
    with pytest.raises(ConfigError, match="overlaps"):
        grade([inside], tmp_path / "o", course, execute_notebooks=False, hidden_data=inside / "labels")


def test_a_reference_no_better_than_the_mean_pose_is_said_to_the_instructor_and_in_the_feedback(tmp_path):
    # A reference trained too briefly: 1.1 x its 356.6 mm is above the mean pose's 368.4 mm (make demo's
    # challenge run of 4 epochs on the hidden clips of S2, S3, S4 and S10 measured just that)
    from pose_course.instructor.grading.feedback import _model_lines
    from pose_course.instructor.grading.model_grade import HiddenSet, threshold_warning
    from pose_course.instructor.grading.results import ModelScore

    hidden = HiddenSet(tmp_path, "valid", np.zeros((1, 8, 17, 3)), tmp_path / "frames.npy", 368.4, [0.0] * 17,
                       reference_mm=356.6)
    rule = ModelRule(full_at_mm="reference", reference=str(tmp_path), zero_at_mm="mean_pose")
    warning = threshold_warning(rule, hidden)
    assert warning.startswith("model rule: full points at 392.3 mm (1.1 x your run's 356.6 mm) is not below "
                              "the zero-points error 368.4 mm (mean_pose)"), warning
    assert threshold_warning(dataclasses.replace(rule, reference_factor=1.0), hidden) is None
    assert threshold_warning(dataclasses.replace(rule, full_at_mm=300.0), hidden) is None
    score = ModelScore(points=10, earned=10, mpjpe_mm=356.6, p_mpjpe_mm=226.8, parameters=583_971,
                       seconds=11.5, full_at_mm=368.4, zero_at_mm=368.4)
    text = "\n".join(_model_lines(score))
    assert "(full points below 368.4 mm, none at or above)" in text and "linear" not in text
    assert "linear between" in "\n".join(_model_lines(dataclasses.replace(score, full_at_mm=300.0)))
