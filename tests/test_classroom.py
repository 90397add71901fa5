"""GitHub Classroom's autograding (pose_course.classroom): the committed workflow is the one generated from
the notebooks' public checks, it scores each of them from `make check`'s record, and the command each step
runs passes exactly when the record says so. The record itself is written by notebooks/conftest.py
(tests/test_check_outputs.py runs it); the instructor's round trip of a release runs the workflow's
commands for real."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pose_course import classroom
from pose_course.cells import check_metadata, nbgrader_metadata
from pose_utils.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
GRADER = "classroom-resources/autograding-command-grader@v1"
REPORTER = "classroom-resources/autograding-grading-reporter@v1"


def _checks(hidden: bool) -> dict:
    """grade_id -> points of the notebooks' public (or hidden) checks, read here without pose_course."""
    found = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = check_metadata(cell)
            if meta is not None and meta["hidden"] == hidden:
                found[meta["grade_id"]] = meta["points"]
    return found


def test_the_committed_workflow_is_the_generated_one():
    committed = (ROOT / classroom.WORKFLOW).read_text()
    assert committed == classroom.workflow(ROOT / "notebooks"), (
        f"{classroom.WORKFLOW} is not the one the notebooks' checks give: run "
        "`.venv/bin/python -m pose_course.classroom write-workflow` and commit it")


def test_the_workflow_runs_make_check_once_then_scores_each_public_check():
    text = (ROOT / classroom.WORKFLOW).read_text()
    doc = yaml.safe_load(text)
    assert set(doc["on"]) >= {"push"}
    steps = doc["jobs"]["run-autograding-tests"]["steps"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11"  # a string: 3.11 unquoted would be read as 3.11 float
    runs = [s.get("run") for s in steps]
    assert runs.index("make .venv/.installed-stamp") < runs.index("make check")
    assert steps[runs.index("make check")]["continue-on-error"] is True  # the scoring steps still run

    graders = [s for s in steps if s.get("uses") == GRADER]
    public = _checks(hidden=False)
    assert len(public) >= 10
    assert [s["with"]["test-name"] for s in graders] == list(public)  # one step each, in notebook order
    for s in graders:
        gid = s["with"]["test-name"]
        assert s["with"]["max-score"] == public[gid]
        assert s["with"]["command"] == f"{classroom.PYTHON} -m pose_course.classroom passed {gid}"
        assert runs.index("make check") < steps.index(s)
    reporter = steps[-1]
    assert reporter["uses"] == REPORTER
    ids = [s["id"] for s in graders]
    assert reporter["with"]["runners"].split(",") == ids
    assert reporter["env"] == {f"{i.upper()}_RESULTS": f"${{{{steps.{i}.outputs.result}}}}" for i in ids}
    for gid in _checks(hidden=True):  # none in a release; the instructor's hidden ones must stay out
        assert gid not in text
    # make check writes the record where the steps read it
    assert f"CHECK_RECORD := {classroom.RECORD}" in (ROOT / "Makefile").read_text()


def test_passed_says_in_one_line_whether_the_record_has_the_check_passed(tmp_path, capsys):
    record = tmp_path / classroom.RECORD
    assert classroom.main(["passed", "mpjpe", "--record", str(record)]) == 1
    assert "run `make check` first" in capsys.readouterr().out
    checks = [{"grade_id": "mpjpe", "points": 2.0, "earned": 2.0, "notebook": "02_model.ipynb", "note": ""},
              {"grade_id": "overfit", "points": 3.0, "earned": 0.0, "notebook": "03_training.ipynb",
               "note": "Exercise: write train_step in pose_utils/training/step.py"}]
    classroom.write_record(record, checks)
    assert classroom.main(["passed", "overfit", "--record", str(record)]) == 1
    assert capsys.readouterr().out == ("overfit: failed, 0 of 3 points (03_training.ipynb): Exercise: write "
                                       "train_step in pose_utils/training/step.py\n")
    assert classroom.main(["passed", "p_mpjpe", "--record", str(record)]) == 1
    assert "the last `make check` did not run this check" in capsys.readouterr().out
    record.write_text("[1, 2")
    assert classroom.main(["passed", "mpjpe", "--record", str(record)]) == 1
    assert "is not a record of the checks" in capsys.readouterr().out
    classroom.write_record(record, checks)
    # as a step runs it: the default record, relative to the folder the command runs in
    done = subprocess.run([sys.executable, "-m", "pose_course.classroom", "passed", "mpjpe"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "mpjpe: passed, 2 of 2 points (02_model.ipynb)\n")


def _notebook(folder: Path, name: str, *checks: tuple) -> None:
    cells = [{"cell_type": "code", "source": "", "metadata": {
        "tags": ["check"] + (["hidden"] if hidden else []),
        "nbgrader": nbgrader_metadata(gid, points)}} for gid, points, hidden in checks]
    (folder / name).write_text(json.dumps({"cells": cells}))


@pytest.mark.parametrize("checks, message", [
    ((("half", 1.5, False),), "02_x.ipynb: check half has points 1.5; GitHub Classroom's autograding takes "
                             "whole"),
    ((("a b", 1, False),), "02_x.ipynb: check grade_id 'a b' has characters other than"),
    ((("loss", 1, False), ("LOSS", 1, False)), "02_x.ipynb: check LOSS has the id of check loss"),
    ((("secret", 1, True),), "no public check cell"),
])
def test_a_check_the_workflow_cannot_carry_is_named(tmp_path, checks, message):
    _notebook(tmp_path, "02_x.ipynb", *checks)
    with pytest.raises(ConfigError, match=re.escape(message)):
        classroom.workflow(tmp_path)


def test_a_check_id_that_starts_with_a_digit_gets_a_step_id_that_does_not(tmp_path):
    _notebook(tmp_path, "02_x.ipynb", ("2d_pose", 2, False), ("pose", 1, False), ("pose_hidden", 1, True))
    doc = yaml.safe_load(classroom.workflow(tmp_path))
    steps = doc["jobs"]["run-autograding-tests"]["steps"]
    assert [(s["id"], s["with"]["max-score"]) for s in steps if s.get("uses") == GRADER] == [
        ("check_2d_pose", 2), ("pose", 1)]
    assert steps[-1]["with"]["runners"] == "check_2d_pose,pose"
