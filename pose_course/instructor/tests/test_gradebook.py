"""After grading: hand marks, the roster, the late policy, the sheets and the Canvas export
(pose_course/instructor/grading/{marks,roster,standing}.py, pose_course/instructor/gradebook/).

A graded batch is written here as the grader writes it (OUT/NAME/result.json, the grader's marker,
feedback.md) for the tiny course of test_grade.py, without running the sandbox: these tests are about
what happens to the results afterwards. The browser page has its own test (browser/test_browser_gradebook.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from test_grade import NOTEBOOK, POINTS, make_repo, write_notebook

from pose_course.instructor.gradebook.canvas import canvas_csv
from pose_course.instructor.grading.answer_key import read_instructor
from pose_course.instructor.grading.feedback import feedback, write_grades
from pose_course.instructor.grading.grade import MARKER, graded_results
from pose_course.instructor.grading.intake import submission_time
from pose_course.instructor.grading.marks import read_marks, save_mark
from pose_course.instructor.grading.results import Answer, CheckScore, Result
from pose_course.instructor.grading.roster import Course, Policy, read_roster
from pose_utils.errors import ConfigError, DataError

RUBRIC = "### BEGIN SOLUTION\nAddition commutes: full points for saying so with an example.\n### END SOLUTION"
ANSWERS = {"ada": "Addition commutes: 2 + 3 = 3 + 2.", "bob": "<script>alert(1)</script> order",
           "cy": "It is the same either way."}
EARNED = {"ada": {"add": 2, "mul": 3, "div": 1}, "bob": {"add": 2, "mul": 0, "div": 1},
          "cy": {"add": 0, "mul": 3, "div": 0}}
ROSTER = ("student_id,name,email,submission\n"
          "s1,\"Lovelace, Ada\",ada@example.edu,ada\n"
          "s2,\"Babbage, Bob\",bob@example.edu,bob\n"
          "s4,\"Hopper, Grace\",grace@example.edu,grace\n")


def fake_batch(root: Path, submitted=None) -> tuple[Path, Path]:
    """(instructor repository, OUT) with three graded submissions, as `grade` leaves them."""
    instructor = root / "instructor"
    write_notebook(instructor / "notebooks" / NOTEBOOK, answer=RUBRIC)
    make_repo(instructor, notebook=False)
    out = root / "grading"
    info = read_instructor(instructor)
    for name, earned in EARNED.items():
        checks = {gid: CheckScore(points=POINTS[gid], earned=float(earned[gid]),
                                  outcome="passed" if earned[gid] else "failed", notebook=NOTEBOOK,
                                  cell=i + 2, hidden=gid == "div", text="", seconds=0.1, cut=0)
                  for i, gid in enumerate(POINTS)}
        result = Result(name=name, source=f"/submissions/{name}.zip", max=sum(POINTS.values()),
                        checks=checks, answers={"why": Answer(text=ANSWERS[name])},
                        total=float(sum(earned.values())),
                        submitted=(submitted or {}).get(name, {}))
        folder = out / name
        folder.mkdir(parents=True)
        (folder / MARKER).write_text("graded\n")
        (folder / "result.json").write_text(json.dumps(result.to_dict()))
        (folder / "feedback.md").write_text(feedback(result, info))
    write_grades(out, graded_results(out, []), info)
    return instructor, out


@pytest.fixture
def batch(tmp_path):
    return fake_batch(tmp_path)


def rows(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))


def mark(out, name, points, comment="", instructor=None):
    names = [r.name for r in graded_results(out, [])]
    return save_mark(out, name, "why", points, comment, {"why": 2.0}, names)


def test_marks_reach_the_totals_and_the_feedback(batch):
    instructor, out = batch
    assert [r["why"] for r in rows(out)] == ["", "", ""]  # not marked yet: empty, not 0
    mark(out, "ada", 1.5, "Right, but say why it holds for floats too.")
    write_grades(out, graded_results(out, []), read_instructor(instructor))
    by = {r["student"]: r for r in rows(out)}
    assert (by["ada"]["why"], by["ada"]["total"], by["bob"]["total"]) == ("1.5", "7.5", "3")
    text = (out / "ada" / "feedback.md").read_text()
    assert "**7.5 / 8 points**" in text and "**1.5 / 2 points**: Right, but say why" in text
    assert "2 answers still to mark" in (out / "grades.md").read_text()


def test_concurrent_saves_lose_no_entry(batch):
    _, out = batch
    names = ["ada", "bob", "cy"] * 10
    errors = []

    def save(i, name):
        try:
            save_mark(out, name, "why", i % 3, f"comment {i}", {"why": 2.0}, ["ada", "bob", "cy"])
        except Exception as e:  # pragma: no cover - the assertion below shows it
            errors.append(e)

    threads = [threading.Thread(target=save, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # and a second process saving at the same time, through the same lock
    code = ("import sys; from pose_course.instructor.grading.marks import save_mark\n"
            "for i in range(20): save_mark(sys.argv[1], 'ada', 'why', 2, f'proc {i}', {'why': 2.0}, ['ada'])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)])
    for i in range(20):
        save_mark(out, "bob", "why", 1, f"main {i}", {"why": 2.0}, ["ada", "bob", "cy"])
    assert proc.wait(60) == 0 and not errors
    marks = read_marks(out)
    assert set(marks) == {"ada", "bob", "cy"} and marks["ada"]["why"].comment == "proc 19"
    assert marks["bob"]["why"].comment == "main 19"
    assert not [p for p in out.iterdir() if p.name.startswith(".marks")]  # no temporary file left


def test_bad_marks_are_refused_with_one_line(batch):
    _, out = batch
    for args, words in [(("zed", "why", 1), "no graded submission named 'zed'"),
                        (("ada", "what", 1), "'what' is not a written answer"),
                        (("ada", "why", 3), "points must be a number from 0 to 2, got 3"),
                        (("ada", "why", float("nan")), "points must be a number"),
                        (("ada", "why", True), "points must be a number")]:
        with pytest.raises(ConfigError, match=words):
            save_mark(out, *args, "", {"why": 2.0}, ["ada", "bob", "cy"])
    assert not (out / "marks.json").exists()
    (out / "marks.json").write_text('{"version": 1, "marks": {"ada": {"why": {"points": "x"}}}}')
    with pytest.raises(DataError, match=r"marks.json: ada / why: points must be a number"):
        save_mark(out, "bob", "why", 1, "", {"why": 2.0}, ["ada", "bob"])
    assert "x" in (out / "marks.json").read_text()  # a broken file is reported, never overwritten


def test_roster_and_late_policy_in_the_sheets(batch, tmp_path):
    instructor, out = batch
    (out / "roster.csv").write_text(ROSTER.replace("s2,", "s2,").replace(
        "submission\n", "submission,submitted_at\n").replace("ada\n", "ada,2026-12-02T10:00:00-05:00\n")
        .replace("bob\n", "bob,\n").replace("grace\n", "grace,\n"))
    (out / "policy.json").write_text(json.dumps({
        "deadline": "2026-12-01T23:59:00-05:00", "grace_minutes": 10, "penalty_percent_per_day": 10,
        "max_late_days": 3, "extensions": {"s2": "2026-12-05T23:59:00-05:00"},
        "overrides": {"cy": {"penalty_percent": 0, "reason": "LMS outage, approved"}}}))
    mark(out, "ada", 2)
    write_grades(out, graded_results(out, []), read_instructor(instructor))
    by = {r["student"]: r for r in rows(out)}
    assert list(by["ada"])[:4] == ["student", "student_id", "name", "email"]
    assert (by["ada"]["name"], by["ada"]["late_days"], by["ada"]["penalty_percent"], by["ada"]["final"]) == \
        ("Lovelace, Ada", "1", "10", "7.2")  # 8 points, 10 h 01 min late: one day, -10 %
    assert by["bob"]["penalty_percent"] == "0" and by["cy"]["student_id"] == ""
    md = (out / "grades.md").read_text()
    assert "- cy: graded, but on no line of the roster" in md
    assert "- s4 (Hopper, Grace): no submission named 'grace'" in md
    assert "penalty set to 0 % by the instructor: LMS outage, approved" in md
    ada = (out / "ada" / "feedback.md").read_text()
    assert "late penalty -10 %" in ada and "the roster's submitted_at" in ada and "1 day(s) late" in ada


def test_late_days_from_the_submission_itself(tmp_path):
    policy = Policy.read(_write(tmp_path / "p.json", json.dumps({
        "deadline": "2026-12-01T23:59:00+00:00", "penalty_percent_per_day": 25, "max_late_days": 2})))
    assert policy.late("x", "2026-12-01T23:59:00", "zip").days == 0  # a zip's time: the deadline's zone
    assert policy.late("x", "2026-12-02T00:00:01+00:00", "commit").penalty_percent == 25
    assert policy.late("x", "2026-12-03T12:00:00+00:00", "commit").penalty_percent == 50
    assert policy.late("x", "2026-12-04T00:00:00+00:00", "commit").penalty_percent == 100  # past max days
    unknown = policy.late("x", "", "a folder without .git")
    assert unknown.penalty_percent == 0 and "no late penalty applied" in unknown.note
    # the times the grader reads: the newest zip entry, the last commit
    zpath = tmp_path / "s.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(zipfile.ZipInfo("repo/a.py", (2026, 12, 1, 9, 30, 0)), "x")
        zf.writestr(zipfile.ZipInfo("repo/b.py", (2026, 12, 2, 8, 15, 2)), "y")
    assert submission_time(zpath)["at"] == "2026-12-02T08:15:02"
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_COMMITTER_DATE": "2026-12-02T01:02:03+01:00", "GIT_AUTHOR_NAME": "s",
           "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@x"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".git" / "config").write_text(  # a hostile config: any of these would run a program
        "[core]\n\tfsmonitor = touch PWNED\n\tpager = touch PWNED\n[log]\n\tshowSignature = true\n"
        "[gpg]\n\tprogram = touch\n")
    (repo / "f").write_text("x")
    subprocess.run(["git", "-c", "core.fsmonitor=false", "-C", str(repo), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-c", "core.fsmonitor=false", "-C", str(repo), "commit", "-q", "-m", "m"],
                   check=True, env=env)
    got = submission_time(repo)
    assert got["at"] == "2026-12-02T01:02:03+01:00" and "last commit" in got["how"]
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()
    assert submission_time(tmp_path / "p.json")["at"] == ""  # not a zip: no time, said so


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, words", [
    ("student_id,name,submission\n", "no column email"),
    ("student_id,name,email,submission\ns1,A,a@x,sub\ns1,B,b@x,other\n",
     "line 3: student_id 's1' also on line 2"),
    ("student_id,name,email,submission\ns1,A,a@x,\n", "line 2: empty submission"),
    ("student_id,name,email,submission,submitted_at\ns1,A,a@x,s,yesterday\n", "'yesterday' is not a time"),
])
def test_bad_rosters(tmp_path, text, words):
    with pytest.raises(ConfigError, match=words):
        read_roster(_write(tmp_path / "roster.csv", text))


@pytest.mark.parametrize("policy, words", [
    ({"deadline": "2026-12-01T23:59:00"}, "has no UTC offset"),
    ({"deadline": "2026-12-01T23:59:00Z", "late_fee": 3}, "unknown key late_fee"),
    ({"deadline": "2026-12-01T23:59:00Z", "penalty_percent_per_day": -1}, "must be a number >= 0"),
    ({"deadline": "2026-12-01T23:59:00Z", "overrides": {"s1": {"penalty_percent": 0}}},
     "give its \"reason\""),
    ({"deadline": "2026-12-01T23:59:00Z", "extensions": {"s1": "soon"}}, "extension of s1: 'soon'"),
])
def test_bad_policies(tmp_path, policy, words):
    with pytest.raises(ConfigError, match=words):
        Policy.read(_write(tmp_path / "policy.json", json.dumps(policy)))


def test_canvas_csv(batch):
    instructor, out = batch
    info = read_instructor(instructor)
    with pytest.raises(ConfigError, match="no roster"):
        canvas_csv(out, graded_results(out, []), info, "PA4")
    (out / "roster.csv").write_text(ROSTER)
    assert Course.read(out).student("ada").name == "Lovelace, Ada"
    mark(out, "ada", 2, "good")
    text, warnings = canvas_csv(out, graded_results(out, []), info, "Programming Assignment 4 (4242)")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                        "Programming Assignment 4 (4242)"]
    assert lines[1] == ["    Points Possible", "", "", "", "", "8"]
    assert lines[2:] == [["Lovelace, Ada", "", "s1", "ada@example.edu", "", "8"],
                         ["Babbage, Bob", "", "s2", "bob@example.edu", "", "3"],
                         ["Hopper, Grace", "", "s4", "grace@example.edu", "", "0"]]
    assert "bob: 1 written answers not marked yet (count 0)" in warnings
    assert "cy: graded, but on no line of the roster" in warnings


def test_gradebook_command_line(batch, tmp_path):
    instructor, out = batch
    roster = _write(tmp_path / "r.csv", ROSTER)
    run = [sys.executable, "-m", "pose_utils", "gradebook"]
    done = subprocess.run([*run, "canvas", str(out), "--instructor", str(instructor), "--roster", str(roster),
                           "--to", str(tmp_path / "canvas.csv")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / "roster.csv").read_text() == ROSTER and (tmp_path / "canvas.csv").is_file()
    bad = subprocess.run([*run, "sheets", str(out), "--instructor", str(instructor), "--policy",
                          str(_write(tmp_path / "p.json", "{"))], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "p.json: unreadable" in bad.stderr
    assert not (out / "policy.json").exists()
