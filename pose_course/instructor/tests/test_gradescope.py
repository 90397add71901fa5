"""The Gradescope export and autograder bundle (pose_course.instructor.gradebook.gradescope, .autograder) on
test_grade's tiny fake course: three submissions graded (checks only) into results.json files checked
against the schema written from Gradescope's specification, the bundle's zip, and its run_autograder run
for real in a fake /autograder with the weaker container-user isolation.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

import jsonschema
import pytest
from test_grade import CORRECT, NOTEBOOK, POINTS, make_repo, write_notebook

from pose_course.cli import main as cli
from pose_course.instructor.gradebook.autograder import bundle
from pose_course.instructor.gradebook.gradescope import SCHEMA, export, results_json
from pose_course.instructor.grading import container_user, host_identity, sandbox
from pose_course.instructor.grading.answer_key import read_instructor
from pose_course.instructor.grading.grade import grade
from pose_course.instructor.grading.marks import Mark
from pose_course.instructor.grading.results import ModelScore, Result
from pose_course.instructor.grading.untrusted import remove_tree
from pose_utils.errors import ConfigError, DataError

pytestmark = pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable()))

WRONG_MUL = CORRECT.replace("return a * b", "return a + b")
WRONG_DIV = CORRECT.replace("return a / b", "return b / a")  # the hidden check prints 0.5, not 2.0
HIDDEN_SOURCE = "print(div(6, 3))"  # the hidden check's cell, and below its expected output
HIDDEN_EXPECTED = "2.0"


def validate(data: dict) -> None:
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Three submissions (right, a public check wrong, the hidden check wrong) graded checks-only."""
    root = tmp_path_factory.mktemp("gradescope")
    instructor = root / "instructor"
    write_notebook(instructor / "notebooks" / NOTEBOOK)
    data = root / "grading.txt"
    data.write_text("graded\n")
    subs = [make_repo(root / "subs" / name, module=module)
            for name, module in (("correct", CORRECT), ("wrong_mul", WRONG_MUL), ("wrong_div", WRONG_DIV))]
    out = root / "out"
    grade(subs, out, instructor, jobs=3, timeout=60, cell_timeout=10, parameters={"data_file": str(data)},
          execute_notebooks=False)
    return root, instructor, out


def test_export_writes_valid_results_for_each_submission(graded, tmp_path):
    root, instructor, out = graded
    args = ["gradescope", "export", str(out), "--to", str(tmp_path), "--instructor", str(instructor)]
    assert cli(args) == 0
    files = sorted(p.parent.name for p in tmp_path.glob("*/results.json"))
    assert files == ["correct", "wrong_div", "wrong_mul"]
    found = {name: json.loads((tmp_path / name / "results.json").read_text()) for name in files}
    for data in found.values():
        validate(data)
        assert [t["name"] for t in data["tests"]] == [f"{g} ({NOTEBOOK})" for g in POINTS]
        assert data["output_format"] == "md" and "graded by hand in Gradescope" in data["output"]
    assert found["correct"]["score"] == sum(POINTS.values())
    assert {t["status"] for t in found["correct"]["tests"]} == {"passed"}
    mul = found["wrong_mul"]["tests"][1]
    assert (mul["score"], mul["max_score"], mul["status"], mul["visibility"]) == (0, 3, "failed", "visible")
    assert "print(mul(2, 3))" in mul["output"] and "-6" in mul["output"] and "+5" in mul["output"]
    div = found["wrong_div"]["tests"][2]
    assert (div["score"], div["status"], div["visibility"]) == (0, "failed", "after_published")
    assert found["wrong_div"]["score"] == POINTS["add"] + POINTS["mul"]
    for data in found.values():  # neither the hidden cell nor its expected output, anywhere
        hidden = json.dumps(data["tests"][2]) + data["output"]
        assert HIDDEN_SOURCE not in json.dumps(data) and HIDDEN_EXPECTED not in hidden


def test_model_gives_a_test_and_the_leaderboard(graded):
    _, instructor, out = graded
    result = Result.from_dict(json.loads((out / "correct" / "result.json").read_text()))
    result.model = ModelScore(points=4, earned=2.5, mpjpe_mm=81.25, p_mpjpe_mm=60.5, parameters=123456,
                              full_at_mm=60, zero_at_mm=120, baselines={"mean pose": 140.0})
    data = results_json(result, read_instructor(instructor))
    validate(data)
    model = data["tests"][-1]
    assert (model["score"], model["max_score"], model["status"]) == (2.5, 4, "passed")
    assert "MPJPE 81.2 mm" in model["output"] or "MPJPE 81.3 mm" in model["output"]
    assert data["leaderboard"][0] == {"name": "MPJPE (mm)", "value": 81.25, "order": "asc"}
    result.model = ModelScore(points=4, problem="no runs/challenge/model.keras")
    data = results_json(result, read_instructor(instructor))
    validate(data)
    assert "leaderboard" not in data and "model.keras" in data["tests"][-1]["output"]


def test_answers_marked_in_the_gradebook_are_tests_with_their_comment(graded, tmp_path):
    _, instructor, out = graded
    result = Result.from_dict(json.loads((out / "wrong_mul" / "result.json").read_text()))
    data = results_json(result, read_instructor(instructor),
                        {"why": Mark(1.5, "Say why it holds for every pair.")})
    validate(data)
    why = data["tests"][-1]
    assert (why["name"], why["score"], why["max_score"], why["status"]) == \
        (f"why (written answer, {NOTEBOOK})", 1.5, 2, "failed")
    assert why["output"] == "Say why it holds for every pair." and data["score"] == result.total + 1.5
    assert "marked by hand: 1.5 / 2 points" in data["output"] and "in Gradescope" not in data["output"]


def test_export_of_a_folder_without_results_says_so(tmp_path, graded):
    with pytest.raises(DataError, match="no graded submission"):
        export(tmp_path, tmp_path / "to", graded[1])


def test_bundle_holds_the_scripts_with_exec_bits_and_the_repository(graded, tmp_path):
    _, instructor, _ = graded
    (instructor / "README.md").write_text("the course")
    (instructor / ".venv" / "lib").mkdir(parents=True)
    (instructor / ".venv" / "lib" / "big.so").write_bytes(b"x")
    path = bundle(tmp_path / "autograder.zip", instructor, timeout=60, cell_timeout=10, checks_only=True)
    with zipfile.ZipFile(path) as zf:
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        settings = json.loads(zf.read("gradescope.json"))
    assert stat.S_IMODE(modes["setup.sh"]) == 0o755 and stat.S_IMODE(modes["run_autograder"]) == 0o755
    assert f"notebooks/{NOTEBOOK}" in modes and "README.md" in modes
    assert not any(n.startswith(".venv") for n in modes)
    assert settings == {"timeout": 60.0, "cell_timeout": 10.0, "checks_only": True}
    with pytest.raises(ConfigError, match="no instructor notebooks"):
        bundle(tmp_path / "other.zip", tmp_path / "empty")


@pytest.fixture(scope="module")
def open_base():
    """A folder of the tests' own under /tmp that other users may pass through (pytest's are 0700, and
    the container-user runs are other users)."""
    base = Path(tempfile.mkdtemp(prefix="pose-gradescope-"))
    base.chmod(0o755)
    yield base
    remove_tree(base)


def test_container_user_mode_is_never_taken_unasked(graded, open_base):
    instructor = open_base / "reachable"
    write_notebook(instructor / "notebooks" / NOTEBOOK)
    one, two = make_repo(open_base / "one"), make_repo(open_base / "two")
    with pytest.raises(ConfigError, match="one submission per container"):
        grade([one, two], open_base / "o", instructor, isolation=container_user.NAME)
    with pytest.raises(ConfigError, match="every user can reach it"):  # the notebooks are 0755
        grade([one], open_base / "o", instructor, isolation=container_user.NAME)
    with pytest.raises(ConfigError, match="expected one of"):
        grade([one], open_base / "o", instructor, isolation="none")


def test_kill_all_ends_what_left_the_process_group():
    who = host_identity.new_identity()
    proc = subprocess.Popen([*container_user.drop(who, Path("/")), "setsid", "sleep", "60"])
    time.sleep(0.3)
    container_user.kill_all(who)
    assert proc.wait(timeout=10) == -signal.SIGKILL


# mul reads the instructor's notebook if it can, and then returns a wrong answer: it passes only if the
# hidden checks stay out of its reach; div is wrong, so the hidden check fails.
SNOOP = WRONG_DIV.replace("def mul(a, b):\n    return a * b", """def mul(a, b):
    import glob, os
    for path in glob.glob(os.environ.get("SNOOP", "/nonexistent") + "/**", recursive=True):
        try:
            open(path).read()
            return 0
        except (IsADirectoryError, PermissionError):
            pass
    return a * b""")


def reachable_python(base: Path) -> Path | None:
    """A Python that other users can start, with this one's packages: this one, or when it lies in a
    closed home (pyenv's under /root) a virtual environment of the system's Python, as Gradescope's is."""
    if container_user.closed_at(Path(sys.base_prefix)) is None:
        return Path(sys.executable)
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.exists():
        return None
    venv = base / "venv"
    subprocess.run([str(system), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site = next((venv / "lib").glob("python*/site-packages"))
    ours = sysconfig.get_paths()["purelib"]
    (site / "grader.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return venv / "bin" / "python"


def test_a_python_the_runs_cannot_reach_stops_the_grader(tmp_path):
    closed = tmp_path / "closed"
    (closed / "bin").mkdir(parents=True)
    closed.chmod(0o700)
    with pytest.raises(ConfigError, match="other users cannot pass through"):
        container_user.check_batch(["one"], [], [closed / "bin"])


@pytest.mark.skipif(container_user.unavailable() is not None, reason=str(container_user.unavailable()))
def test_run_autograder_grades_a_submission_in_a_fake_autograder(graded, open_base):
    """setup.sh's effect by hand (the source unpacked from the bundle and closed to others), then
    run_autograder for real."""
    _, instructor, _ = graded
    root = open_base / "autograder"
    source = root / "source"
    with zipfile.ZipFile(bundle(open_base / "autograder.zip", instructor, timeout=60, cell_timeout=10,
                                checks_only=True)) as zf:
        zf.extractall(source)
    (root / "run_autograder").write_bytes((source / "run_autograder").read_bytes())
    source.chmod(0o700)
    make_repo(root / "submission", module=SNOOP.replace('os.environ.get("SNOOP", "/nonexistent")',
                                                        repr(str(source))))
    python = reachable_python(open_base)
    if python is None:
        pytest.skip(f"{sys.base_prefix}: not reachable by other users, and no system Python of this version")
    env = {**os.environ, "POSE_UTILS_AUTOGRADER_ROOT": str(root), "POSE_UTILS_AUTOGRADER_PYTHON": str(python)}
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((root / "results" / "results.json").read_text())
    validate(data)
    scores = {t["name"].split()[0]: (t["score"], t["status"]) for t in data["tests"]}
    # add needs the grading data file the bundle does not ship: the public failure shows its diff
    assert scores == {"add": (0, "failed"), "mul": (POINTS["mul"], "passed"), "div": (0, "failed")}
    assert "graded 5" in data["tests"][0]["output"]
    assert HIDDEN_SOURCE not in json.dumps(data)
