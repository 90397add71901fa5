"""nbgrader reads the course's notebooks: its metadata validation passes on the instructor's notebooks and
on the released ones, and its `generate_assignment` on the instructor's notebooks leaks no hidden check
and no stored output (docs/assignment.md, "nbgrader").

nbgrader runs from an environment of its own, `.venv-nbgrader` (`make test` builds it: its Jupyter pins
would fight ours), in subprocesses; nothing here executes the course's notebooks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from pose_course.cells import CHECK_MARK, HIDDEN_TAG, tags
from pose_course.instructor import release as rel
from pose_course.instructor.grading.answer_key import read_instructor

ROOT = Path(__file__).resolve().parents[3]
ENV = ROOT / ".venv-nbgrader"
PIN = ROOT / "pose_course" / "instructor" / "nbgrader-requirements.txt"
VALIDATE = Path(__file__).with_name("nbgrader_validate.py")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TIMEOUT = 300


@pytest.fixture(scope="module")
def nbgrader_bin() -> Path:
    if not (ENV / "bin" / "nbgrader").is_file():
        pytest.fail(f"{ENV}: nbgrader's environment is missing; `make test` builds it "
                    "(make .venv-nbgrader/.stamp)", pytrace=False)
    return ENV / "bin"


@pytest.fixture(scope="module")
def spec():
    return read_instructor(ROOT)


def _run(args, bin_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    # nbgrader's gradebook runs `alembic` from PATH, as in an activated environment
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def _graded_ids(path: Path) -> list[str]:
    return [c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(path, as_version=4).cells
            if c.metadata.get("nbgrader", {}).get("grade")]


def test_nbgrader_validates_the_instructors_and_the_released_notebooks(nbgrader_bin, spec, tmp_path):
    released = []
    for path in NOTEBOOKS:  # what rel.release writes for each notebook
        nb, _ = rel.release_notebook(nbformat.read(path, as_version=4), path.name)
        released.append(tmp_path / "release" / path.name)
        released[-1].parent.mkdir(exist_ok=True)
        nbformat.write(nb, released[-1])
    # a control: the metadata these notebooks had before (no schema_version) must be refused
    old = nbformat.read(NOTEBOOKS[-1], as_version=4)
    for cell in old.cells:
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader = {k: cell.metadata.nbgrader[k] for k in ("grade", "grade_id", "points")}
    nbformat.write(old, tmp_path / "old.ipynb")

    paths = [*map(str, NOTEBOOKS), *map(str, released), str(tmp_path / "old.ipynb")]
    done = _run([str(nbgrader_bin / "python"), str(VALIDATE), *paths], nbgrader_bin, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["version"] == PIN.read_text().split("==")[1].strip()
    seen = found["notebooks"]
    assert seen.pop(str(tmp_path / "old.ipynb")) == {
        "error": "SchemaTooOldError: Outdated schema version: 0 (expected 3)"}
    for path in paths[:-1]:
        assert seen[path] == {"results": {}, "grade_ids": _graded_ids(Path(path))}, path
    graded = sum(len(seen[p]["grade_ids"]) for p in paths[:len(NOTEBOOKS)])
    assert graded == len(spec.checks) + len(spec.answers) > 0  # nbgrader sees every check and answer
    hidden = sum(c.hidden for c in spec.checks)
    assert sum(len(seen[str(p)]["grade_ids"]) for p in released) == graded - hidden


def _cell_of(nb, grade_id: str):
    [cell] = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return cell


def _hidden_lines(check) -> list[str]:
    """The lines a hidden check's cell holds between nbgrader's hidden-test markers."""
    lines = check.source.splitlines()
    begin = next((i for i, ln in enumerate(lines) if "BEGIN HIDDEN TESTS" in ln), None)
    end = next((i for i, ln in enumerate(lines) if "END HIDDEN TESTS" in ln), None)
    assert begin is not None and end == len(lines) - 1 and all(CHECK_MARK in ln for ln in lines[:begin]), \
        f"{check.notebook} {check.grade_id}: every line but '# {CHECK_MARK}' belongs between the markers"
    return [ln.strip() for ln in lines[begin + 1:end] if ln.strip()]


def test_nbgrader_generate_assignment_leaks_no_hidden_check_and_no_output(nbgrader_bin, spec, tmp_path):
    course = tmp_path / "course"
    (course / "source" / "pose").mkdir(parents=True)
    for path in NOTEBOOKS:
        shutil.copyfile(path, course / "source" / "pose" / path.name)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.course_id = 'pose'\n")
    done = _run([str(nbgrader_bin / "nbgrader"), "generate_assignment", "pose"], nbgrader_bin, course)
    log = done.stdout + done.stderr
    assert done.returncode == 0 and "ERROR" not in log, log[-3000:]

    hidden = [c for c in spec.checks if c.hidden]
    assert hidden, "the instructor's notebooks hold hidden checks"
    public_lines = {ln.strip() for path in NOTEBOOKS for c in nbformat.read(path, as_version=4).cells
                    if HIDDEN_TAG not in tags(c) for ln in c.source.splitlines()}
    generated = {p.name: p for p in (course / "release" / "pose").glob("*.ipynb")}
    assert sorted(generated) == [p.name for p in NOTEBOOKS]
    for name, path in generated.items():
        nb = nbformat.read(path, as_version=4)
        text = path.read_text()
        assert not re.search("BEGIN SOLUTION|BEGIN HIDDEN TESTS", text), name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name}: an output left"
        for check in (c for c in hidden if c.notebook == name):
            cell = _cell_of(nb, check.grade_id)
            assert cell.source.strip() == f"# {CHECK_MARK}", f"{name} {check.grade_id}: {cell.source!r}"
            secret = [ln for ln in _hidden_lines(check) if ln not in public_lines]
            assert secret, check.grade_id  # something to look for
            leaked = [ln for ln in secret if json.dumps(ln)[1:-1] in text]
            assert not leaked, f"{name} holds hidden check {check.grade_id!r}: {leaked[:2]}"
        for answer in (a for a in spec.answers if a.notebook == name):  # the model answers are cleared too
            assert _cell_of(nb, answer.grade_id).source == "YOUR ANSWER HERE", answer.grade_id
