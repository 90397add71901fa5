"""The grading engine (pose_course.instructor.grading.grade) and its sandbox, on a tiny hand-made course.

Everything lives in pytest's temporary folders: a fake instructor repository with one notebook (a
parameters cell, three checks worth 2 + 3 + 1 points, the last one hidden, and a written answer), and
submissions that are right, wrong, or hostile. One batch grades them all (two at a time); each test then
reads its submission's result. Kernel start-up dominates the time, so cell limits are a few seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from pose_course.cells import nbgrader_metadata
from pose_course.instructor.grading import host_identity, sandbox
from pose_course.instructor.grading.answer_key import read_instructor
from pose_course.instructor.grading.grade import grade, main, submission_names
from pose_course.instructor.grading.scoring import describe_failure, junit_key
from pose_course.instructor.grading.untrusted import Rejected, copy_tree, unzip_safely
from pose_utils.errors import ConfigError

pytestmark = pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable()))

NOTEBOOK = "01_math.ipynb"
POINTS = {"add": 2.0, "mul": 3.0, "div": 1.0}
MEMORY_CAP = 3 * sandbox.GiB // 2  # an idle kernel maps about 0.8 GiB; the hog asks for 4 GiB
CELL_TIMEOUT = 3.0
TIMEOUT = 60.0

CORRECT = """\
def add(a, b):
    return a + b


def mul(a, b):
    return a * b


def div(a, b):
    return a / b
"""


def _cell(source, tags=(), grade_id=None, points=None, output=None, kind="code", answer=False):
    import nbformat

    meta = {"tags": list(tags)}
    if grade_id:
        meta["nbgrader"] = nbgrader_metadata(grade_id, points, answer=answer)
    if kind == "markdown":
        return nbformat.v4.new_markdown_cell(source, metadata=meta)
    cell = nbformat.v4.new_code_cell(source, metadata=meta)
    if output is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
        cell.execution_count = 1
    return cell


def write_notebook(path: Path, hidden: bool = True, answer: str = "YOUR ANSWER HERE") -> None:
    """The course's notebook: parameters, three checks (the last hidden), a written answer."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    cells = [
        _cell("scale = 1\ndata_file = 'none'", tags=["parameters"]),
        _cell("# NBVAL_CHECK_OUTPUT\nfrom pose_utils.mathx import add\n"
              "label = open(data_file).read().strip() if data_file != 'none' else 'default'\n"
              "print(label, add(2, 3) * scale)", ["check"], "add", POINTS["add"], "graded 5\n"),
        _cell("# NBVAL_CHECK_OUTPUT\nfrom pose_utils.mathx import mul\nprint(mul(2, 3))",
              ["check"], "mul", POINTS["mul"], "6\n"),
    ]
    if hidden:
        # as in the course's notebooks: the body between nbgrader's hidden-test lines
        cells.append(_cell("# NBVAL_CHECK_OUTPUT\n### BEGIN HIDDEN TESTS\nfrom pose_utils.mathx import div\n"
                           "print(div(6, 3))\n### END HIDDEN TESTS",
                           ["check", "hidden"], "div", POINTS["div"], "2.0\n"))
    cells.append(_cell(answer, ["answer"], "why", 2, kind="markdown", answer=True))
    nb.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def make_repo(folder: Path, module: str = CORRECT, notebook: bool = True,
              answer: str = "Addition commutes, so the order does not matter.") -> Path:
    """A student's repository: pose_utils/{__init__,mathx}.py and the released notebook (no hidden check)."""
    (folder / "pose_utils").mkdir(parents=True)
    (folder / "pose_utils" / "__init__.py").write_text("")
    (folder / "pose_utils" / "mathx.py").write_text(textwrap.dedent(module))
    (folder / "Makefile").write_text("test:\n\ttrue\n")
    if notebook:
        write_notebook(folder / "notebooks" / NOTEBOOK, hidden=False, answer=answer)
    return folder


def tree_state(root: Path, skip: Path | None = None) -> dict:
    """{relative path: sha256 or 'dir'} of everything under root (not following symlinks), but `skip`."""
    state = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        rel = str(path.relative_to(root))
        if path.is_symlink():
            state[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


# mul: look everywhere a process of the sandbox can read for something that signs or carries results
# (every process's environment and command line, descriptors, sockets, files), say what it found, try
# the grader's channel and /etc/shadow, then leave a process behind that rewrites the JUnit report with
# every check passed until the sandbox ends.
FORGER = CORRECT.replace("def mul(a, b):\n    return a * b", """def mul(a, b):
    import glob, os, socket, stat, subprocess, sys
    secrets, sockets = set(), []
    for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
        try:
            items = open(path, "rb").read().split(b"\\0")
        except OSError:
            continue
        for item in items:
            text = item.decode(errors="replace")
            if any(word in text.upper() for word in ("TOKEN", "KEY", "SECRET", "HMAC", "GRADER")):
                secrets.add(text.split("=", 1)[0])
                value = text.split("=", 1)[-1]
                if os.path.exists(value) and stat.S_ISSOCK(os.stat(value).st_mode):
                    sockets.append(value)
    for path in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            if os.readlink(path).startswith("socket:"):
                sockets.append(path)
        except OSError:
            pass
    for root in (os.path.expanduser("~"), os.path.abspath("../.."), "/tmp", "/run"):
        for here, _, files in os.walk(root):
            for name in files:
                full = os.path.join(here, name)
                try:
                    if stat.S_ISSOCK(os.lstat(full).st_mode):
                        sockets.append(full)
                except OSError:
                    pass
    reached = []
    for path in sockets:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.sendall(b'{"type": "finish", "exitstatus": 0, "report_sha256": null}\\n')
            reached.append(path)
        except OSError:
            pass
    try:
        open("/etc/shadow").read()
        shadow = "read"
    except OSError as e:
        shadow = type(e).__name__
    box = os.path.abspath(os.path.join(os.getcwd(), "..", ".."))
    loop = ("import time\\nwhile True:\\n    open(%r, 'w').write(%r)\\n    time.sleep(0.005)\\n"
            % (os.path.join(box, "report.xml"), FORGED_XML))
    subprocess.Popen([sys.executable, "-c", loop], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "secrets=%s sockets=%d reached=%s shadow=%s" % (sorted(secrets), len(sockets), reached, shadow)""")

# add: as many children as it can, up to BOMB_CHILDREN, each replaced by a sleeping `sleep`
FORK_BOMB = """import os
    children = 0
    try:
        for _ in range(5000):
            if os.fork() == 0:
                os.execv("/bin/sleep", ["sleep", "600"])
            children += 1
    except OSError as e:
        print("fork stopped:", type(e).__name__)
    print("children:", children)
    return a + b"""


def hostile_modules(instructor: Path, outside: Path, out_dir: Path, sources: Path) -> dict:
    """Module sources of the misbehaving submissions, by name (paths the attacks aim at baked in)."""
    target_nb = instructor / "notebooks" / NOTEBOOK
    escape = CORRECT + f"""

def _attack():
    import os
    for path in [{str(instructor / "pwned.txt")!r}, {str(target_nb)!r}, {str(outside / "pwned.txt")!r},
                 {str(instructor / "data" / "grading.txt")!r},
                 {str(out_dir / "pwned.txt")!r}, {str(out_dir / "grades.csv")!r},
                 {str(sources / "correct" / "pose_utils" / "mathx.py")!r}]:
        try:
            with open(path, "a") as f:
                f.write("pwned")
        except OSError:
            pass
    try:
        os.remove({str(target_nb)!r})
    except OSError:
        pass


_attack()
"""
    peek = CORRECT.replace("def div(a, b):\n    return a / b", f"""def div(a, b):
    import json, os
    seen = []
    for label, path in [("instructor", {str(target_nb)!r}),
                        ("copy", os.path.join(os.getcwd(), {NOTEBOOK!r}))]:
        try:
            nb = json.load(open(path))
        except OSError as e:
            seen.append(label + ":" + type(e).__name__)
            continue
        for cell in nb["cells"]:
            if "hidden" in cell["metadata"].get("tags", []):
                class Stolen:
                    def __str__(self):
                        return "".join(cell["outputs"][0]["text"]).rstrip()
                return Stolen()
    try:
        open("/proc/%d/environ" % os.getppid(), "rb").read()
        seen.append("environ:read")
    except OSError as e:
        seen.append("environ:" + type(e).__name__)
    return " ".join(seen)""")
    forged_cases = "".join(f'<testcase classname="repo.notebooks.{NOTEBOOK}" name="Cell {i}"/>'
                           for i in range(5))
    forger = FORGER.replace("FORGED_XML", repr(
        f'<?xml version="1.0"?><testsuites><testsuite>{forged_cases}</testsuite></testsuites>'))
    return {
        "wrong_mul": CORRECT.replace("a * b", "a * b + 1"),
        "unwritten": CORRECT.replace("return a * b", "raise NotImplementedError(\"Exercise: write mul "
                                                     "in pose_utils/mathx.py (01_math.ipynb explains it)\")"),
        "hanging": CORRECT.replace("return a + b", "import time\n    time.sleep(600)"),
        "syntax": CORRECT.replace("def mul(a, b):", "def mul(a, b)"),
        "escape": escape,
        "chatty": CORRECT.replace("return a * b", "import os\n    print('x' * 5_000_000)\n"
                                                  "    os.write(1, b'y' * 3_000_000)\n    return a * b"),
        "hog": CORRECT.replace("return a + b", "block = bytearray(4 * 2**30)\n    return a + b"),
        "crasher": CORRECT.replace("return a + b",
                                   "import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)"),
        "peek": peek,
        "forger": forger,
        "raises": CORRECT.replace("return a * b", "return a * b + 'x'"),
        "noisy": CORRECT.replace("return a * b", "return a * b * (1 + 3e-9)"),
        "forkbomb": CORRECT.replace("return a + b", FORK_BOMB),
    }


HOSTILE = ("wrong_mul", "unwritten", "hanging", "syntax", "escape", "chatty", "hog", "crasher", "peek",
           "forger", "raises", "noisy", "forkbomb")
BOMB_CHILDREN = 5000
PROCESS_CAP = 400  # processes and threads of one sandboxed run in the batch below


def _zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The fake course, its submissions, and one graded batch of them all (two at a time)."""
    root = tmp_path_factory.mktemp("course")
    instructor = root / "instructor"
    write_notebook(instructor / "notebooks" / NOTEBOOK)
    make_repo(instructor, notebook=False)  # the instructor's own solutions sit beside the notebooks
    data_file = instructor / "data" / "grading.txt"  # grading data, read-only to the submissions
    data_file.parent.mkdir()
    data_file.write_text("graded\n")
    outside = root / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    subs, out = root / "submissions", root / "grading"
    modules = hostile_modules(instructor, outside, out, subs)
    paths = [make_repo(subs / "correct")] + [make_repo(subs / name, module=modules[name]) for name in HOSTILE]
    paths.append(make_repo(subs / "no_notebook", notebook=False))
    paths.append(make_cheat(make_repo(subs / "cheat", module=modules["wrong_mul"])))
    linked = make_repo(subs / "symlinked", notebook=False)  # borrows the instructor's solution by symlink
    (linked / "pose_utils" / "mathx.py").unlink()
    (linked / "pose_utils" / "mathx.py").symlink_to(instructor / "pose_utils" / "mathx.py")
    (linked / "notebooks").mkdir()
    (linked / "notebooks" / NOTEBOOK).symlink_to(instructor / "notebooks" / NOTEBOOK)
    paths.append(linked)
    zipped = make_repo(root / "unpacked" / "zipped-main")
    paths.append(_zip(subs / "zipped.zip", {f"zipped-main/{p.relative_to(zipped)}": p.read_bytes()
                                            for p in zipped.rglob("*") if p.is_file()}))
    paths.append(_zip(subs / "not_repo.zip", {"essay.txt": "my essay"}))
    paths.append(_zip(subs / "traversal.zip", {"repo/pose_utils/__init__.py": "", "../escaped.txt": "out"}))
    before = tree_state(root)
    results = grade(paths, out, instructor, jobs=2, timeout=TIMEOUT, cell_timeout=CELL_TIMEOUT,
                    parameters={"data_file": str(data_file)},
                    limits=sandbox.Limits(memory_bytes=MEMORY_CAP, processes=PROCESS_CAP))
    return argparse.Namespace(
        root=root, instructor=instructor, outside=outside, subs=subs, out=out, before=before, data=data_file,
        paths=paths, results={r["name"]: r for r in results}, order=[r["name"] for r in results],
        csv=(out / "grades.csv").read_text(),
        feedback={r["name"]: (out / r["name"] / "feedback.md").read_text() for r in results})


def earned(result) -> dict:
    return {gid: e["earned"] for gid, e in result["checks"].items()}


def lines(result) -> list[str]:
    return [p["line"] for p in result["problems"]]


def test_correct_submission_gets_full_marks(course):
    r = course.results["correct"]
    assert r["status"] == "ok" and r["problems"] == []
    assert earned(r) == POINTS and r["total"] == 6 == r["max"]
    text = course.feedback["correct"]
    assert "**Automatic checks: 6 / 6 points.**" in text
    assert "> Addition commutes, so the order does not matter." in text  # the written answer, for the human
    assert "Failed checks" not in text
    executed = course.out / "correct" / "executed" / NOTEBOOK
    assert executed.is_file() and r["notebooks"] == [
        {"name": NOTEBOOK, "ok": True, "error": None, "path": str(executed)}]
    assert "graded 5" in executed.read_text()  # the -p value reached the student's own notebook too
    assert not (course.out / "correct" / "work").exists()


def test_one_wrong_function_loses_exactly_that_checks_points(course):
    r = course.results["wrong_mul"]
    assert earned(r) == {**POINTS, "mul": 0.0} and r["total"] == 6 - POINTS["mul"]
    assert r["status"] == "ok"
    text = course.feedback["wrong_mul"]
    section = text.split("### mul: 0 / 3 points", 1)[1]
    assert "Cell outputs differ" in section
    assert "Expected:\n\n```\n6\n```" in section and "Your output:\n\n```\n7\n```" in section
    assert "```diff\n--- expected\n+++ your output\n@@ -1 +1 @@\n-6\n+7\n```" in section
    assert "print(mul(2, 3))" in section  # the cell, so the student can find it


def test_an_error_shows_its_type_message_and_the_students_frame(course):
    r = course.results["raises"]
    assert earned(r) == {**POINTS, "mul": 0.0}
    section = course.feedback["raises"].split("### mul: 0 / 3 points", 1)[1].split("\n## ", 1)[0]
    assert "Your code raised:" in section
    assert "TypeError: unsupported operand type(s) for +: 'int' and 'str'" in section
    assert "File pose_utils/mathx.py:6, in mul(a, b)" in section and "return a * b + 'x'" in section
    assert "Cell In[" in section  # the check's line that called it
    assert str(course.root) not in section and "/tmp/" not in section and "site-packages" not in section


def test_numbers_printed_within_the_tolerance_pass(course):
    # 6.000000018 for 6: the 9th significant digit differs
    assert earned(course.results["noisy"]) == POINTS and course.results["noisy"]["status"] == "ok"


def test_a_fork_bomb_stops_at_the_process_cap(course):
    r = course.results["forkbomb"]
    got = r["checks"]["add"]["got"]
    children = int(got.split("children: ")[1].split()[0])
    assert "fork stopped: BlockingIOError" in got and 0 < children < PROCESS_CAP < BOMB_CHILDREN
    # the same kernel then runs the other checks, and the batch goes on
    assert earned(r) == {**POINTS, "add": 0.0}
    # The bomb runs again in the student's own notebook, and its sleepers hold the cap for the rest of
    # that run: whether papermill's kernel still gets a thread after it depends on timing (a CI machine
    # saw "notebook_errors", this one "ok"). Either way the run is named, not hung or lost.
    assert r["status"] in ("ok", "notebook_errors"), r["status"]
    if r["status"] != "ok":
        assert lines(r) and all(line.startswith(f"notebooks/{NOTEBOOK} as submitted") for line in lines(r))


def test_submission_cannot_reconfigure_pytest(course):
    # its conftest.py files, pytest.ini and sitecustomize.py would all mark every cell passed
    r = course.results["cheat"]
    assert earned(r) == {**POINTS, "mul": 0.0} and r["status"] == "ok"


def test_symlinks_in_a_folder_are_left_out(course):
    r = course.results["symlinked"]
    assert r["total"] == 0 and r["status"] == "symlinks notebooks_missing"
    assert lines(r)[0] == "left out 2 symbolic links or special files (first: notebooks/01_math.ipynb)"


def test_unwritten_exercise_says_so(course):
    r = course.results["unwritten"]
    assert earned(r) == {**POINTS, "mul": 0.0} and r["status"] == "notebook_errors"  # its own notebook too
    assert ("not written yet (Exercise: write mul in pose_utils/mathx.py (01_math.ipynb explains it))."
            in course.feedback["unwritten"])


def test_submission_past_its_time_limit(course, tmp_path):
    # a cell limit longer than the submission's: the wall clock kills the whole run
    [r] = grade([course.subs / "hanging"], tmp_path / "out", course.instructor, timeout=6, cell_timeout=60,
                parameters={"data_file": str(course.data)})
    assert r["total"] == 0 and r["status"] == "hung" and r["runs"]["checks"]["timed_out"]
    assert lines(r) == ["hung: the checks did not finish within the submission's 6 s and were stopped; every "
                        "check without a result scores 0",
                        "hung: the checks used up the submission's time; its own notebooks did not run"]
    feedback = (tmp_path / "out" / "hanging" / "feedback.md").read_text()
    assert "no result: the run stopped before this cell" in feedback


def test_hanging_cell_costs_only_its_check(course):
    r = course.results["hanging"]
    assert earned(r) == {**POINTS, "add": 0.0}
    assert r["status"].split()[0] == "hung"
    assert any(line.startswith("hung: check 'add' ran past the 3 s limit") for line in lines(r))


def test_syntax_error_is_reported_in_one_line(course):
    r = course.results["syntax"]
    assert r["total"] == 0 and "syntax_error" in r["status"]
    assert [line for line in lines(r) if line.startswith("syntax error: pose_utils/mathx.py line 5")]


def test_deleted_notebook_still_runs_the_checks(course):
    r = course.results["no_notebook"]
    assert r["total"] == 6 and r["status"] == "notebooks_missing"
    assert lines(r) == [f"deleted notebooks: notebooks/{NOTEBOOK} not in the submission (checks ran from the "
                        "instructor's copies; written answers in them are missing)"]
    assert f"*notebooks/{NOTEBOOK} is missing from the submission*" in course.feedback["no_notebook"]


def test_zip_that_is_no_repository(course):
    r = course.results["not_repo"]
    assert r["total"] == 0 and r["status"] == "not_a_repository" and r["runs"] == {}
    assert lines(r) == ["not_repo.zip: not a repository of the course (no pose_utils/__init__.py at its top "
                        "or in its one top-level folder)"]


def test_zip_with_dotdot_paths_is_refused_unopened(course):
    r = course.results["traversal"]
    assert r["status"] == "unsafe_zip" and r["total"] == 0
    assert lines(r) == ["traversal.zip: member '../escaped.txt' has an absolute or '..' path; nothing was "
                        "unpacked"]
    assert not list(course.root.parent.rglob("escaped.txt"))


def test_zipped_repository_grades_like_a_folder(course):
    assert course.results["zipped"]["total"] == 6 and course.results["zipped"]["status"] == "ok"


def test_writing_outside_its_folder_changes_nothing(course):
    # every file of the course (instructor repo, the other submissions, tmp_path beside) is as it was
    after = tree_state(course.root, skip=course.out)
    assert after == tree_state_without(course.before, course.root, course.out)
    assert not (course.out / "pwned.txt").exists()
    assert "pwned" not in course.csv
    assert course.results["escape"]["total"] == 6  # and the attempts cost the batch nothing


def tree_state_without(state: dict, root: Path, skip: Path) -> dict:
    rel = str(skip.relative_to(root))
    return {k: v for k, v in state.items() if k != rel and not k.startswith(rel + os.sep)}


def test_printing_megabytes_is_cut(course):
    r = course.results["chatty"]
    assert earned(r) == {**POINTS, "mul": 0.0}
    assert "printed_too_much" in r["status"]
    assert [line for line in lines(r) if line.startswith("printed too much:")]
    run = r["runs"]["checks"]
    assert run["output_truncated"] and run["stdout_bytes"] > 3_000_000
    cap = sandbox.Limits().output_bytes
    assert (course.out / "chatty" / "logs" / "checks.stdout.log").stat().st_size <= cap
    assert (course.out / "chatty" / "report.xml").stat().st_size < 200_000


def test_allocating_too_much_memory(course):
    r = course.results["hog"]
    assert earned(r) == {**POINTS, "add": 0.0}
    assert "out_of_memory" in r["status"]
    assert "ran out of memory: check 'add' went past the limit of 1.5 GiB per process" in lines(r)


def test_hidden_check_cannot_be_read_from_inside(course):
    r = course.results["peek"]
    assert earned(r) == {**POINTS, "div": 0.0}  # it found nothing to copy the expected output from
    seen = r["checks"]["div"]["text"]
    assert "instructor:FileNotFoundError copy:FileNotFoundError environ:PermissionError" in seen
    text = course.feedback["peek"]
    assert "A hidden check (its cell and expected output are not shown)" in text
    assert "div(6, 3)" not in text and "2.0" not in text


def test_forged_report_never_earns_points(course):
    r = course.results["forger"]
    # it rewrote report.xml with every check passed: caught, and every check scores 0
    assert r["total"] == 0 and r["status"] == "tampered"
    assert lines(r) == ["tampered: the test report in the sandbox was rewritten or does not match what "
                        "pytest told the grader; every check scores 0"]
    # what it found: variable names, and no key among them; no socket it could write to; no /etc/shadow
    found = r["checks"]["mul"]["got"]
    assert "reached=[]" in found and "shadow=PermissionError" in found
    names = found.split("secrets=")[1].split("]")[0]
    assert "TOKEN" not in names and "RECORD" not in names


def test_kernel_that_dies(course):
    r = course.results["crasher"]
    assert r["total"] == 0 and r["status"].split()[0] == "crashed"
    assert lines(r)[0].startswith("crashed: the notebook's kernel died during check 'add'")


def test_batch_sheets(course):
    rows = course.csv.splitlines()
    assert rows[0] == "student,add,mul,div,why,total,status"  # why: a hand mark
    assert [row.split(",")[0] for row in rows[1:]] == course.order == sorted(course.order)
    assert "correct,2,3,1,,6,ok" in rows and "wrong_mul,2,0,1,,3,ok" in rows
    md = (course.out / "grades.md").read_text()
    assert "| student | add (2) | mul (3) | div (1) | why (2) | total (8) | status |" in md
    for name, r in course.results.items():
        for line in lines(r):
            assert f"- {name}: {line}" in md
            assert f"- {line}" in course.feedback[name]
    bad = {n for n, r in course.results.items() if r["status"] != "ok"} - {"forkbomb"}  # (its test)
    assert bad == {"hanging", "syntax", "chatty", "hog", "crasher", "forger", "no_notebook", "not_repo",
                   "traversal", "symlinked", "unwritten", "raises"}


def test_regrading_some_grades_them_the_same_and_keeps_every_row(course, tmp_path):
    again = grade([course.subs / "wrong_mul", course.subs / "correct"], course.out, course.instructor, jobs=2,
                  timeout=TIMEOUT, cell_timeout=CELL_TIMEOUT, parameters={"data_file": str(course.data)},
                  limits=sandbox.Limits(memory_bytes=MEMORY_CAP, processes=PROCESS_CAP))
    assert [r["name"] for r in again] == ["correct", "wrong_mul"]
    for r in again:
        assert (course.out / r["name"] / "feedback.md").read_text() == course.feedback[r["name"]]
    assert (course.out / "grades.csv").read_text() == course.csv  # every student's row, in order


def test_a_regraded_submission_gets_its_new_row(course, tmp_path):
    out = tmp_path / "out"
    for name in ("alice", "bob", "carol"):
        make_repo(tmp_path / name)
    run = dict(timeout=TIMEOUT, cell_timeout=CELL_TIMEOUT, parameters={"data_file": str(course.data)},
               execute_notebooks=False)
    grade([tmp_path / n for n in ("alice", "bob", "carol")], out, course.instructor, jobs=2, **run)
    (tmp_path / "bob" / "pose_utils" / "mathx.py").write_text(course.subs.joinpath(
        "wrong_mul", "pose_utils", "mathx.py").read_text())
    [bob] = grade([tmp_path / "bob"], out, course.instructor, **run)
    assert bob["total"] == 3
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[1:] == ["alice,2,3,1,,6,ok", "bob,2,0,1,,3,ok", "carol,2,3,1,,6,ok"]
    assert "| bob | 2 | 0 | 1 |  | 3 | ok |" in (out / "grades.md").read_text()


# ----------------------------------------------------------------------------- the sandbox alone


def _box(tmp_path):
    work = tmp_path / "box"
    work.mkdir()
    return work


def test_sandbox_filesystem_and_network(tmp_path):
    work = _box(tmp_path)
    secret = tmp_path / "instructor"
    secret.mkdir()
    (secret / "hidden.ipynb").write_text("answers")
    script = (f"import os, socket\n"
              f"print(os.path.exists({str(secret)!r}) and os.listdir({str(secret)!r}))\n"
              f"for p in [{str(tmp_path / 'outside.txt')!r}, '/usr/pwned', {str(work / 'mine.txt')!r}]:\n"
              f"    try:\n        open(p, 'w').write('x'); print('wrote', p)\n"
              f"    except OSError as e:\n        print('refused', type(e).__name__)\n"
              f"try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n"
              f"except OSError as e:\n    print('network', e.errno)\n"
              f"print(os.getuid(), os.environ['HOME'], os.environ.get('GRADER_SECRET'))\n"
              f"for p in ['/etc/shadow', '/etc/gshadow']:\n"
              f"    try:\n        open(p).read(); print('read', p)\n"
              f"    except OSError as e:\n        print('refused', type(e).__name__)\n"
              f"print(os.listdir('/run'))\n")
    os.environ["GRADER_SECRET"] = "x"
    try:
        r = sandbox.run([sys.executable, "-c", script], work, hide=[secret])
    finally:
        del os.environ["GRADER_SECRET"]
    out = Path(r.stdout).read_text().splitlines()
    assert r.returncode == 0, Path(r.stderr).read_text()
    assert out[0] in ("False", "[]")  # hidden: absent (under the private /tmp) or an empty tmpfs
    # beside the work folder is the private /tmp (a write lands there and vanishes); / is read-only
    assert out[2] == "refused OSError"
    assert out[3] == f"wrote {work / 'mine.txt'}"
    assert out[4] == "network 101"  # ENETUNREACH: no interface but loopback
    assert out[5] == f"{sandbox.SANDBOX_UID} {work / 'home'} None"
    # what `nobody` cannot read (both exist on Debian, root's alone), whoever started the grader
    assert out[6:8] == ["refused PermissionError"] * 2 and out[8] == "[]"  # /run: no host sockets
    assert not (tmp_path / "outside.txt").exists() and (work / "mine.txt").read_text() == "x"
    if os.geteuid() == 0:  # a root grader's sandbox is an unprivileged uid of its own on the host
        assert (work / "mine.txt").stat().st_uid >= host_identity.UID_BASE


def test_sandbox_stops_a_fork_bomb_at_its_process_cap(tmp_path):
    script = ("import os\nn = 0\ntry:\n    for _ in range(5000):\n        if os.fork() == 0:\n"
              "            os.execv('/bin/sleep', ['sleep', '600'])\n        n += 1\n"
              "except OSError as e:\n    print(type(e).__name__)\nprint(n)\n")
    r = sandbox.run([sys.executable, "-c", script], _box(tmp_path),
                    limits=sandbox.Limits(wall_seconds=60, processes=300))
    out = Path(r.stdout).read_text().split()
    assert r.returncode == 0 and out[0] == "BlockingIOError" and 250 < int(out[1]) < 300


@pytest.mark.skipif(os.geteuid() != 0, reason="a grader that is a normal user runs the sandbox as itself")
def test_a_root_grader_gives_each_run_a_fresh_unprivileged_uid(tmp_path):
    owners = []
    for i in range(2):
        work = tmp_path / f"box{i}"
        work.mkdir()
        (work / "given.txt").write_text("the work folder is the run's")
        r = sandbox.run(["sh", "-c", "echo x >> given.txt; touch made.txt"], work)
        assert r.returncode == 0, Path(r.stderr).read_text()
        owners.append((work / "made.txt").stat().st_uid)
        given = work / "given.txt"
        assert given.stat().st_uid == owners[-1] and given.read_text().endswith("x\n")
    assert owners[0] != owners[1] and min(owners) >= host_identity.UID_BASE


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_a_grader_that_is_a_normal_user_sandboxes_as_that_user(tmp_path):
    import subprocess

    from test_lab import AS_NOBODY, NOBODY, _nobody_can_run_python

    if not _nobody_can_run_python():
        pytest.skip(f"user nobody cannot run {sys.executable} with pose_utils here (its Python lies in a "
                    "folder only root can enter)")
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="pose-grade-nobody-"))  # pytest's own folders are root's, 0700
    base.chmod(0o777)
    probe = ("import os, sys\nfrom pathlib import Path\nfrom pose_course.instructor.grading import sandbox\n"
             "work = Path(sys.argv[1])\nwork.mkdir()\n"
             "script = \"import os\\ntry:\\n    open('/etc/shadow')\\nexcept OSError as e:\\n"
             "    print(type(e).__name__)\\nopen('made', 'w')\\n\"\n"
             "r = sandbox.run([sys.executable, '-c', script], work)\n"
             "print(r.returncode, Path(r.stdout).read_text().strip(), (work / 'made').stat().st_uid)\n")
    try:
        done = subprocess.run([*AS_NOBODY, sys.executable, "-c", probe, str(base / "box")],
                              capture_output=True, text=True, timeout=120, cwd=base)
    finally:
        shutil.rmtree(base)
    assert done.stdout.split() == ["0", "PermissionError", str(NOBODY)], done.stderr


def test_the_prelude_never_runs_a_command_as_root(tmp_path):
    import subprocess

    for uid in (0, -1):
        spec = f'{{"uid": {uid}, "gid": 1}}'
        argv = [sys.executable, "-I", str(host_identity.PRELUDE), spec, "--", "touch", str(tmp_path / "ran")]
        done = subprocess.run(argv, capture_output=True, text=True)
        assert done.returncode == 125 and "refusing to run as uid" in done.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader's sandbox runs as another uid")
def test_data_the_sandbox_could_not_read_stops_the_grader(course, tmp_path):
    secret = tmp_path / "grading.txt"
    secret.write_text("graded\n")
    secret.chmod(0o600)
    with pytest.raises(ConfigError, match=f"{secret}: not readable by other users.*chmod -R o\\+rX"):
        grade([course.subs / "correct"], tmp_path / "out", course.instructor, timeout=TIMEOUT,
              parameters={"data_file": str(secret)})


def test_the_channel_takes_one_connection():
    import socket

    from pose_course.instructor.grading.channel import Channel

    with Channel(None) as channel:
        first = socket.socket(socket.AF_UNIX)
        first.connect(str(channel.path))
        first.sendall(b'{"type": "result", "nodeid": "a"}\nnot json\n{"type": "finish"}\n[1]\n')
        for _ in range(100):  # the grader stops listening once it has its one connection
            if not channel.path.exists():
                break
            import time

            time.sleep(0.05)
        with pytest.raises(OSError):
            socket.socket(socket.AF_UNIX).connect(str(channel.path))
        first.close()
    assert channel.messages() == [{"type": "result", "nodeid": "a"}, {"type": "finish"}]
    assert not channel.folder.exists()


def test_errors_shown_without_the_graders_paths(tmp_path):
    from pose_course.tracebacks import describe_error, error_line

    repo = tmp_path / "box" / "repo"
    error = {"ename": "FileNotFoundError", "evalue": f"[Errno 2] No such file: '{repo}/data/x.h5'",
             "traceback": ["-" * 20, "FileNotFoundError    Traceback (most recent call last)",
                           "Cell In[4], line 2\n      1 import h5py\n----> 2 load('data/x.h5')",
                           f"File {repo}/pose_utils/io.py:9, in load(path)\n----> 9     return open(path)",
                           f"File {sys.prefix}/lib/python3.11/site-packages/h5py/x.py:1, in f()\n  1",
                           "FileNotFoundError: [Errno 2] No such file"]}
    text = describe_error(error, repo, [tmp_path])
    assert text.startswith("FileNotFoundError: [Errno 2] No such file: 'data/x.h5'")
    assert "File pose_utils/io.py:9, in load(path)" in text and "Cell In[4], line 2" in text
    assert "(1 frames inside libraries left out)" in text
    assert str(tmp_path) not in text and sys.prefix not in text
    assert error_line(error, repo, 5) == ("cell 5 raised FileNotFoundError: [Errno 2] No such file: "
                                          "'data/x.h5' (at pose_utils/io.py:9, in load(path))")


def test_sandbox_mount_order(tmp_path):
    # hidden folders first, read-only binds back into them, the work folder, then the hidden mounts made
    # read-only (non-recursive, so the binds inside keep their modes); nothing is started here
    # the base installation, not the venv: a checkout under /tmp has its venv under the private /tmp
    venv = Path(sys.base_prefix).resolve()
    argv = sandbox.command_line(["true"], tmp_path, hide=[venv.parent, "/"], expose=[venv, "/no/such/path"])
    bwrap = argv[argv.index("bwrap"):]
    order = [bwrap.index(x) for x in (f"{venv.parent}", str(venv), str(tmp_path))]
    assert bwrap[order[0] - 1] == "--tmpfs" and bwrap[order[1] - 1] == "--ro-bind"
    assert bwrap[order[2] - 1] == "--bind" and order == sorted(order)
    remounted = [bwrap[i + 1] for i, word in enumerate(bwrap) if word == "--remount-ro"]
    assert str(venv.parent) in remounted and "/no/such/path" not in bwrap
    assert ["--tmpfs", "/"] != bwrap[order[0] - 1: order[0] + 1] and "--cap-drop" in bwrap
    assert argv[0] == "prlimit" and argv[argv.index("bwrap") - 1] == "--"


def test_sandbox_wall_clock_kills_the_whole_tree(tmp_path):
    work = _box(tmp_path)
    # a daemon in its own session that would write after the limit
    script = f"(setsid sh -c 'sleep 1; echo late > {work}/late' &) ; sleep 30"
    r = sandbox.run(["sh", "-c", script], work, limits=sandbox.Limits(wall_seconds=0.5))
    assert r.timed_out and r.returncode is None and r.seconds < 5
    import time

    time.sleep(1.5)
    assert not (work / "late").exists()


def test_sandbox_caps_output_memory_and_cpu(tmp_path):
    work = _box(tmp_path)
    limits = sandbox.Limits(wall_seconds=20, memory_bytes=sandbox.GiB, output_bytes=1000, cpu_seconds=1)
    r = sandbox.run([sys.executable, "-c", "print('x' * 100000)"], work, limits=limits)
    assert r.output_truncated and r.stdout_bytes == 100001 and Path(r.stdout).stat().st_size == 1000
    r = sandbox.run([sys.executable, "-c", "b = bytearray(3 * 2**30)"], work, limits=limits)
    assert r.memory_exceeded and r.returncode == 1
    r = sandbox.run([sys.executable, "-c", "while True: pass"], work, limits=limits)
    assert r.cpu_exceeded and not r.timed_out


def test_without_bwrap_one_line_and_no_run(tmp_path, monkeypatch):
    real = sandbox.shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None if name == "bwrap" else real(name))
    sandbox.unavailable.cache_clear()
    try:
        with pytest.raises(ConfigError) as info:
            sandbox.run(["true"], _box(tmp_path))
        message = str(info.value)
        assert "\n" not in message and "apt-get install bubblewrap" in message and "unisolated" in message
    finally:
        monkeypatch.undo()
        sandbox.unavailable.cache_clear()


# ----------------------------------------------------------------------------- unpacking, names, contract


@pytest.mark.parametrize("member, why", [
    ("../up.txt", "absolute or '..' path"),
    ("/abs.txt", "absolute or '..' path"),
    ("a/../../up.txt", "absolute or '..' path"),
    ("C:\\\\up.txt", "absolute or '..' path"),
])
def test_unzip_refuses_paths_out_of_the_folder(tmp_path, member, why):
    archive = _zip(tmp_path / "s.zip", {"ok.txt": "fine", member: "bad"})
    with pytest.raises(Rejected) as info:
        unzip_safely(archive, tmp_path / "dest", 10**6, 100)
    assert info.value.code == "unsafe_zip" and why in str(info.value)
    assert not (tmp_path / "dest").exists()


def test_unzip_refuses_symlinks_and_bombs(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("pose_utils")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc")
    with pytest.raises(Rejected, match="is a symbolic link"):
        unzip_safely(archive, tmp_path / "dest", 10**6, 100)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * 5_000_000)
    assert bomb.stat().st_size < 50_000
    with pytest.raises(Rejected) as info:
        unzip_safely(bomb, tmp_path / "dest", 1_000_000, 100)
    assert info.value.code == "too_large"


def test_folder_copies_leave_symlinks_out(tmp_path):
    src = make_repo(tmp_path / "student")
    (src / "pose_utils" / "secret.py").symlink_to(tmp_path / "elsewhere.py")
    (src / "notebooks" / "linked").symlink_to(tmp_path)
    (src / ".git").mkdir()
    (src / ".git" / "big").write_bytes(b"x" * 1000)
    left_out = copy_tree(src, tmp_path / "copy", 10**6, 100, {".git"})
    assert sorted(left_out) == ["notebooks/linked", "pose_utils/secret.py"]
    assert not (tmp_path / "copy" / ".git").exists()
    assert (tmp_path / "copy" / "pose_utils" / "mathx.py").is_file()


def test_submission_names_are_sorted_and_unique(tmp_path):
    named = submission_names([tmp_path / "b" / "Zoë Smith.zip", tmp_path / "a" / "Zoë Smith",
                              tmp_path / "x", tmp_path / ".hidden", tmp_path / "grades.csv",
                              tmp_path / "-rf"])
    assert [n for n, _ in named] == ["Zo__Smith", "Zo__Smith-2", "_-rf", "_grades.csv", "hidden", "x"]
    assert named[0][1] == tmp_path / "a" / "Zoë Smith"  # ties broken by path: the same names every time


def test_instructor_contract(tmp_path):
    import nbformat

    nb_path = tmp_path / "instructor" / "notebooks" / NOTEBOOK
    write_notebook(nb_path)
    spec = read_instructor(tmp_path / "instructor", {"data_file": "x"})
    assert [(c.grade_id, c.points, c.code_cell, c.hidden) for c in spec.checks] == [
        ("add", 2.0, 2, False), ("mul", 3.0, 3, False), ("div", 1.0, 4, True)]  # after the injected cell
    assert spec.checks[0].expected == "graded 5\n" and [a.grade_id for a in spec.answers] == ["why"]
    with pytest.raises(ConfigError, match="no graded notebook has a parameter named data_dirr"):
        read_instructor(tmp_path / "instructor", {"data_dirr": "x"})
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[2].metadata.nbgrader["grade_id"] = "add"
    nbformat.write(nb, str(nb_path))
    with pytest.raises(ConfigError, match="grade_id 'add' is also used in 01_math.ipynb cell 2"):
        read_instructor(tmp_path / "instructor")
    nb.cells[2].metadata.nbgrader["grade_id"] = "mul"
    nb.cells[2].source = nb.cells[2].source.replace("# NBVAL_CHECK_OUTPUT\n", "")
    nbformat.write(nb, str(nb_path))
    with pytest.raises(ConfigError, match="must be a code cell with a line '# NBVAL_CHECK_OUTPUT'"):
        read_instructor(tmp_path / "instructor")
    # nbgrader's schema 3 in full, as nbgrader itself reads it (pose_course.cells.nbgrader_metadata)
    nb.cells[2].source = "# NBVAL_CHECK_OUTPUT\n" + nb.cells[2].source
    nb.cells[3].metadata.nbgrader = {"grade": True, "grade_id": "div", "points": 1}
    nbformat.write(nb, str(nb_path))
    schema = '"schema_version": 3, "solution": false, "locked": true'
    with pytest.raises(ConfigError, match=re.escape(f"cell 4: check 'div' needs nbgrader's {schema}")):
        read_instructor(tmp_path / "instructor")
    nb.cells[3].metadata.nbgrader = nbgrader_metadata("div", 1)
    nb.cells[4].metadata.nbgrader = nbgrader_metadata("why", 2)
    nbformat.write(nb, str(nb_path))
    with pytest.raises(ConfigError, match="cell 5: answer 'why' needs nbgrader's \"solution\": true"):
        read_instructor(tmp_path / "instructor")
    with pytest.raises(ConfigError, match="no instructor notebooks"):
        read_instructor(tmp_path)


def test_failure_texts_and_junit_names():
    assert junit_key("repo/notebooks/01_math.ipynb::Cell 3") == ("repo.notebooks.01_math.ipynb", "Cell 3")
    mismatch = ("Notebook cell execution failed\nCell 3: Cell outputs differ\n\nInput:\nprint(1)\n\n"
                "Traceback:\n mismatch 'stdout'\n\n assert reference_output == test_output failed:\n\n"
                "  '6\\n' == '7\\n'\n  \n  - 7\n  + 6\n")
    assert describe_failure(mismatch) == ("Cell outputs differ", "7\n")
    error = ("Notebook cell execution failed\nCell 1: Cell execution caused an exception\n\nInput:\nx\n\n"
             "Traceback:\n\n#x1B[31mNameError#x1B[39m: name 'x' is not defined\n")
    assert describe_failure(error) == ("Cell execution caused an exception",
                                       "NameError: name 'x' is not defined")


def test_cli_errors_are_one_plain_line(tmp_path):
    write_notebook(tmp_path / "instructor" / "notebooks" / NOTEBOOK)
    args = argparse.Namespace(submissions=[str(tmp_path / "nobody")], out=str(tmp_path / "out"), jobs=1,
                              timeout=60.0, cell_timeout=5.0, instructor=str(tmp_path / "instructor"),
                              parameter=[])
    with pytest.raises(Exception, match=f"submission not found: {tmp_path / 'nobody'}$"):
        main(args)
    make_repo(tmp_path / "alice")
    args.submissions = [str(tmp_path / "alice")]
    args.parameter = [["no_such", "1"]]
    with pytest.raises(ConfigError, match="no graded notebook has a parameter named no_such"):
        main(args)
    args.parameter, args.jobs = [], 0
    with pytest.raises(ConfigError, match="--jobs must be a positive integer"):
        main(args)
    (tmp_path / "out" / "alice").mkdir(parents=True)
    (tmp_path / "out" / "alice" / "thesis.tex").write_text("mine")
    args.jobs = 1
    with pytest.raises(ConfigError, match="was not written by the grader"):
        main(args)
    assert (tmp_path / "out" / "alice" / "thesis.tex").read_text() == "mine"


CHEAT_HOOK = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome, report.longrepr = "passed", None
"""


def make_cheat(repo: Path) -> Path:
    """Everything a submission could do to make pytest itself report every cell passed."""
    (repo / "conftest.py").write_text(CHEAT_HOOK)
    (repo / "notebooks" / "conftest.py").write_text(CHEAT_HOOK)
    (repo / "cheat_plugin.py").write_text(CHEAT_HOOK)
    (repo / "pytest.ini").write_text("[pytest]\naddopts = -p cheat_plugin\n")
    (repo / "sitecustomize.py").write_text(
        "import sys\nif any('pytest' in a for a in sys.argv):\n"
        "    import nbval.plugin\n    nbval.plugin.IPyNbCell.compare_outputs = lambda *a, **k: True\n")
    return repo
