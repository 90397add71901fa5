"""Grade a batch of student submissions: `python -m pose_utils grade SUBMISSION... --out DIR`.

The contract with the notebooks
-------------------------------
- A *check* is a code cell of an instructor notebook (`notebooks/NN_*.ipynb` of the instructor's
  repository) with the tag `check` in `cell.metadata.tags` and nbgrader's metadata
  `cell.metadata.nbgrader = {"grade": true, "grade_id": "<unique id>", "points": <number>}`. Its expected
  output is stored in the cell (executed, `execution_count` set) and compared by nbval: the source has a
  line `# NBVAL_CHECK_OUTPUT`. A *hidden* check has the tag `hidden` as well; it exists only in the
  instructor's notebooks, and feedback never shows its source or expected output.
- A *written answer* is a markdown cell tagged `answer` with nbgrader metadata `{"grade": true,
  "solution": true, "grade_id": ..., "points": ...}`: graded by a human; the feedback shows the text of
  the cell with the same grade_id in the student's own notebook.
- grade_ids are unique across all the instructor's notebooks; points are numbers >= 0.
- Each notebook has a cell tagged `parameters` (papermill's convention); the grading parameters
  (`-p NAME VALUE`, e.g. the grading data's folder) are injected after it, into the notebooks that name
  them. A string value with a '/' that names an existing path is made absolute and readable (read-only)
  inside the sandbox.
- Hidden checks come after the visible ones of their notebook: a check's source runs in the student's
  kernel, so later cells of the student's could print it into feedback; expected outputs never leave pytest.

What happens to one submission (a repository folder, or a .zip of one), in OUT/NAME/
---------------------------------------------------------------------------------
1. It is staged: a .zip is checked before anything is written (no absolute paths, no `..`, no symlinks,
   at most MAX_FILES members and `max_bytes` unpacked, counted while unpacking) and unpacked; a folder is
   copied without symlinks, VCS folders or virtual environments. A repository has `pose_utils/__init__.py`
   at its top (or in its single top-level folder).
2. Checks: a copy of it gets the instructor's notebooks (hidden checks included, parameters injected) in
   its `notebooks/`, and the sandbox (pose_utils.course.sandbox) runs
   `python -P -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=C --junitxml=report.xml
   -p no:cacheprovider ... NOTEBOOKS` with the grader's own Python. The kernels import the student's
   package first (their PYTHONPATH is the copy's root); pytest itself does not: it reads no conftest.py,
   ini file or module of the submission, which could otherwise rewrite the results (the helper plugin
   HELPER_SOURCE sets the kernels' PYTHONPATH and the comparisons notebooks/conftest.py skips).
3. JUnit XML: nbval names a test case after the notebook and its code cell ("Cell N", counting code cells
   from 0 in the parameterized copy); cells map to checks by that position. A passed check earns its
   points, a failed, errored or skipped one 0. The plugin keeps its own record of the outcomes, signed
   with a key the submission never sees; a report that disagrees with it scores 0 ("tampered").
4. The student's own notebooks as submitted run with papermill in a second sandbox on a fresh copy, the
   executed copies kept in OUT/NAME/executed/.
5. OUT/NAME/feedback.md, OUT/NAME/result.json, OUT/NAME/report.xml and OUT/NAME/logs/ (the runs' streams);
   at the end OUT/grades.csv and OUT/grades.md, each written under a temporary name, then renamed.

Hidden checks stay hidden: inside the sandbox the instructor's repository, OUT (but for the run's own
folder), every submission and the caller's home are empty; the instructor's notebooks are written into
the run's folder just before pytest starts and deleted by the plugin once nbval has read them, before any
kernel starts; pytest's memory cannot be read by the kernels (it makes itself non-dumpable).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import dataclasses
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import sys
import threading
import time
from pathlib import Path

from ..errors import ConfigError, DataError
from ..fileio import atomic_path, write_json
from . import sandbox
from .sandbox import Rejected
from .tables import markdown_table

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
PACKAGE = "pose_utils"
CHECK_TAG, HIDDEN_TAG, ANSWER_TAG, PARAMETERS_TAG = "check", "hidden", "answer", "parameters"
CHECK_MARK = "NBVAL_CHECK_OUTPUT"
# How the student version's unwritten functions fail (pose_utils.errors.EXERCISE_PREFIX, written by the
# release step): NotImplementedError("Exercise: write F in FILE (NOTEBOOK explains it)").
EXERCISE_PREFIX = "Exercise: "
DEFAULT_TIMEOUT = 900.0  # seconds for a submission in all (its checks, then its own notebooks)
# The grading parameters `grade` injects unless -p says otherwise: the smallest runs that still exercise
# every cell (the checks build their own small inputs), on the tiny data rendered once per batch into
# OUT/GRADING_DATA. Only names the graded notebooks' parameters cells have.
GRADING_PARAMETERS = {"frame_size": 64, "epochs": 1, "max_train_clips": 10, "max_valid_clips": 5,
                      "sweep_epochs": 1, "sweep_max_train_clips": 5, "sweep_max_valid_clips": 4,
                      "batch_sizes": [5], "learning_rates": [1e-4]}
GRADING_DATA = "grading-data"
DEFAULT_CELL_TIMEOUT = 300.0
DEFAULT_MAX_BYTES = 200 * 1024**2  # a submission, unpacked or copied
MAX_FILES = 20000
MAX_SHOWN = 4000  # characters of a failure shown in feedback.md
MARKER = ".graded-by-pose-utils"  # OUT/NAME folders the grader may empty before grading again
SKIPPED_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "__pycache__", ".ipynb_checkpoints", ".pytest_cache",
                ".mypy_cache", ".ruff_cache", "node_modules", "__MACOSX"}
HELPER_NAME = "_pose_utils_grader"
TOKEN_VAR, RECORD_VAR, KERNEL_PATH_VAR = ("POSE_UTILS_GRADER_TOKEN", "POSE_UTILS_GRADER_RECORD",
                                          "POSE_UTILS_GRADER_KERNEL_PATH")

# Runs inside the sandbox, so it imports nothing of pose_utils (there, `pose_utils` is the student's).
# As a pytest plugin (-p) and as a script (`python -P helper.py papermill SPEC.json`).
HELPER_SOURCE = r'''
"""The grader's side inside the sandbox (written by pose_utils.course.grade)."""
import ctypes, hashlib, hmac, json, os, sys, time

TOKEN = os.environ.pop("POSE_UTILS_GRADER_TOKEN", "").encode()
RECORD = os.environ.pop("POSE_UTILS_GRADER_RECORD", None)
KERNEL_PATH = os.environ.pop("POSE_UTILS_GRADER_KERNEL_PATH", None)
if KERNEL_PATH is not None:
    os.environ["PYTHONPATH"] = KERNEL_PATH  # only the kernels (started later) import the student's code
try:  # non-dumpable: no process of the sandbox can read this one's memory, environment or files
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
except Exception:
    pass
# What notebooks/conftest.py never compares (stderr, rich output, widgets, the runner's records).
SKIP_COMPARE = ("stderr", "text/html", "application/javascript", "application/vnd.jupyter.widget-view+json",
                "application/vnd.pose-utils.record+json")
MAX_REPR = 20000
_outcomes = {}

def pytest_configure(config):
    # nbval waits the whole cell limit for a kernel that died (killed, os._exit): notice it at once
    try:
        from queue import Empty
        from nbval.kernel import RunningKernel
    except ImportError:
        return
    original = RunningKernel.get_message

    def get_message(self, stream, timeout=None):
        if stream != "shell" or timeout is None:
            return original(self, stream, timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return original(self, stream, timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            except Empty:
                if not self.is_alive():
                    raise RuntimeError("Kernel died while the cell ran (killed, or it exited)") from None
                if time.monotonic() >= deadline:
                    raise

    RunningKernel.get_message = get_message

def pytest_collectstart(collector):
    if hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + tuple(
            k for k in SKIP_COMPARE if k not in collector.skip_compare)

def pytest_collection_finish(session):
    # nbval holds every notebook in memory now; no kernel has started yet
    for path in sorted({str(item.path) for item in session.items}):
        try:
            os.unlink(path)
        except OSError:
            pass

try:
    import pytest
except ImportError:
    pytest = None

if pytest is not None:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        text = report.longrepr if isinstance(report.longrepr, str) else None
        if text is not None and len(text) > MAX_REPR:
            report.longrepr = text[:MAX_REPR] + "\n[grader: %d more characters cut]" % (len(text) - MAX_REPR)
            _outcomes.setdefault(report.nodeid, {})["cut"] = len(text) - MAX_REPR

def pytest_runtest_logreport(report):
    entry = _outcomes.setdefault(report.nodeid, {})
    if report.when == "setup" and not report.passed:
        entry["outcome"] = "error" if report.failed else "skipped"
    elif report.when == "call":
        entry["outcome"] = report.outcome

def _write(payload):
    if RECORD:
        text = json.dumps(payload, sort_keys=True)
        signature = hmac.new(TOKEN, text.encode(), hashlib.sha256).hexdigest()
        with open(RECORD, "w") as f:
            json.dump({"payload": payload, "hmac": signature}, f)

def pytest_sessionfinish(session, exitstatus):
    _write({"outcomes": _outcomes, "exitstatus": int(exitstatus)})

def _papermill(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    import papermill
    status = []
    for nb in spec["notebooks"]:
        entry = {"name": os.path.basename(nb["input"]), "ok": False}
        try:
            names = papermill.inspect_notebook(nb["input"]).keys()
            params = {k: v for k, v in spec["parameters"].items() if k in names}
            papermill.execute_notebook(nb["input"], nb["output"], parameters=params, kernel_name="python3",
                                       language="python", progress_bar=False, cwd=nb["cwd"],
                                       execution_timeout=spec["cell_timeout"], start_timeout=60)
            entry["ok"] = True
        except Exception as e:
            if hasattr(e, "ename"):
                entry["error"] = "cell %s raised %s: %s" % (e.cell_index + 1, e.ename, (e.evalue or "")[:500])
            else:
                first = (str(e).strip().splitlines() or [""])[0]
                entry["error"] = ("%s: %s" % (type(e).__name__, first))[:1000]
        status.append(entry)
        with open(spec["status"], "w") as f:
            json.dump(status, f)

if __name__ == "__main__" and sys.argv[1:2] == ["papermill"]:
    _papermill(sys.argv[2])
'''


# ----------------------------------------------------------------------------- the instructor's notebooks


@dataclasses.dataclass(frozen=True)
class Check:
    grade_id: str
    points: float
    notebook: str  # file name, e.g. "01_data.ipynb"
    cell: int  # index among all the cells of the instructor's notebook, from 0
    code_cell: int  # nbval's "Cell N" in the parameterized copy
    hidden: bool
    source: str
    expected: str


@dataclasses.dataclass(frozen=True)
class Answer:
    grade_id: str
    points: float
    notebook: str
    template: str  # the cell's text in the instructor's notebook


@dataclasses.dataclass
class Instructor:
    root: Path
    notebooks: dict  # name -> parameterized NotebookNode (only notebooks with checks or answers)
    checks: list
    answers: list
    parameters: frozenset = frozenset()  # the parameter names of those notebooks

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)


def _tags(cell) -> list:
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []


def _output_text(outputs) -> str:
    """The plain text nbval compares for a cell's outputs (stdout, text/plain, errors)."""
    parts = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") == "stdout":
            parts.append(out.get("text", ""))
        elif kind in ("execute_result", "display_data") and "text/plain" in out.get("data", {}):
            text = out["data"]["text/plain"]
            parts.append(("".join(text) if isinstance(text, list) else text) + "\n")
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
    return "".join(parts)


def _grading_metadata(cell, where: str) -> tuple[str, float]:
    meta = cell.get("metadata", {}).get("nbgrader")
    if not isinstance(meta, dict) or meta.get("grade") is not True:
        raise ConfigError(f"{where}: a graded cell needs metadata nbgrader = "
                          '{"grade": true, "grade_id": ..., "points": ...}')
    grade_id, points = meta.get("grade_id"), meta.get("points")
    if not isinstance(grade_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", grade_id):
        raise ConfigError(f"{where}: grade_id must be letters, digits, '_', '.' or '-', got {grade_id!r}")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not points >= 0:
        raise ConfigError(f"{where}: points must be a number >= 0, got {points!r}")
    return grade_id, float(points)


def read_instructor(root: str | os.PathLike, parameters: dict | None = None) -> Instructor:
    """The checks and answers of the instructor's notebooks ROOT/notebooks/NN_*.ipynb, each notebook
    parameterized with the names its parameters cell has. ConfigError for anything that breaks the
    contract (module docstring), or a parameter no notebook takes."""
    import nbformat
    import papermill
    from papermill.parameterize import parameterize_notebook

    root = Path(root).resolve()
    folder = root / "notebooks"
    found = sorted(folder.glob(NOTEBOOK_PATTERN)) if folder.is_dir() else []
    if not found:
        raise ConfigError(f"{folder}: no instructor notebooks (NN_name.ipynb) in it")
    parameters = dict(parameters or {})
    notebooks, checks, answers, seen, accepted = {}, [], [], {}, set()
    for path in found:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as e:
            raise ConfigError(f"{path}: not a readable notebook ({e})") from None
        for cell in nb.cells:  # papermill reads every cell's tags (its own loader adds the missing ones)
            cell.metadata.setdefault("tags", [])
        cells = list(nb.cells)  # parameterize_notebook inserts a cell into nb itself
        graded = [i for i, c in enumerate(cells) if CHECK_TAG in _tags(c) or ANSWER_TAG in _tags(c)]
        if not graded:
            continue
        names = set(papermill.inspect_notebook(str(path)))
        accepted |= names
        given = {k: v for k, v in parameters.items() if k in names}
        if given:
            nb.metadata.setdefault("papermill", {})  # parameterize_notebook records the values there
        marked = parameterize_notebook(nb, given, kernel_name="python3", language="python") if given else nb
        code_index = {id(c): k for k, c in enumerate(c for c in marked.cells if c.cell_type == "code")}
        for i in graded:
            cell, where = cells[i], f"{path.name} cell {i + 1}"
            grade_id, points = _grading_metadata(cell, where)
            if grade_id in seen:
                raise ConfigError(f"{where}: grade_id {grade_id!r} is also used in {seen[grade_id]}")
            seen[grade_id] = where
            if CHECK_TAG in _tags(cell):
                if cell.cell_type != "code" or not any(
                        line.strip().lstrip("#").strip() == CHECK_MARK and line.strip().startswith("#")
                        for line in cell.source.splitlines()):
                    raise ConfigError(f"{where}: check {grade_id!r} must be a code cell with a line "
                                      f"'# {CHECK_MARK}' (nbval compares only those in lax mode)")
                if cell.get("execution_count") is None:
                    raise ConfigError(f"{where}: check {grade_id!r} has no stored output (run the cell "
                                      "and save the notebook): nbval would pass it whatever it prints")
                checks.append(Check(grade_id, points, path.name, i, code_index[id(cell)],
                                    HIDDEN_TAG in _tags(cell), cell.source, _output_text(cell.outputs)))
            else:
                if cell.cell_type != "markdown":
                    raise ConfigError(f"{where}: answer {grade_id!r} must be a markdown cell")
                answers.append(Answer(grade_id, points, path.name, cell.source))
        notebooks[path.name] = marked
    unknown = sorted(set(parameters) - accepted)
    if unknown:
        raise ConfigError(f"no graded notebook has a parameter named {', '.join(unknown)}; "
                          f"known parameters: {', '.join(sorted(accepted)) or 'none'}")
    if not checks and not answers:
        raise ConfigError(f"{folder}: no cell is tagged '{CHECK_TAG}' or '{ANSWER_TAG}'")
    return Instructor(root, notebooks, checks, answers, frozenset(accepted))


# ----------------------------------------------------------------------------- staging a submission


def find_repository(folder: Path, label: str) -> Path:
    """`folder`, or its single top-level folder, when it holds PACKAGE/__init__.py; else Rejected."""
    def is_repo(p: Path) -> bool:
        return (p / PACKAGE / "__init__.py").is_file()

    if is_repo(folder):
        return folder
    entries = [e for e in folder.iterdir() if not e.name.startswith(".") and e.name not in SKIPPED_DIRS]
    if len(entries) == 1 and entries[0].is_dir() and is_repo(entries[0]):
        return entries[0]
    raise Rejected("not_a_repository", f"{label}: not a repository of the course (no {PACKAGE}/__init__.py "
                                       "at its top or in its one top-level folder)")


def stage(source: Path, dest: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Path, list[str]]:
    """Unpack or copy a submission into `dest`; (the repository inside it, symlinks left out)."""
    if source.is_dir():
        left_out = sandbox.copy_tree(source, dest, max_bytes, MAX_FILES, SKIPPED_DIRS)
    elif source.is_file() and source.suffix.lower() == ".zip":
        sandbox.unzip_safely(source, dest, max_bytes, MAX_FILES, SKIPPED_DIRS)
        left_out = []
    else:
        raise Rejected("not_a_repository", f"{source.name}: neither a folder nor a .zip file")
    return find_repository(dest, source.name), left_out


def syntax_errors(repo: Path) -> list[str]:
    """'pose_utils/x.py line N: message' for each module of the package Python cannot parse (compiled,
    never run)."""
    found = []
    for path in sorted((repo / PACKAGE).rglob("*.py")):
        rel = path.relative_to(repo)
        if path.stat().st_size > 4 * 1024**2:
            continue
        try:
            compile(path.read_bytes(), str(rel), "exec", dont_inherit=True)
        except SyntaxError as e:
            found.append(f"{rel} line {e.lineno}: {type(e).__name__}: {e.msg}")
        except Exception as e:  # null bytes, nesting too deep for the parser
            found.append(f"{rel}: {type(e).__name__}: {e}")
    return found


# ----------------------------------------------------------------------------- the two sandboxed runs


@dataclasses.dataclass
class _Batch:
    """What every submission of a batch shares."""

    instructor: Instructor
    out_dir: Path
    helper_dir: Path
    limits: sandbox.Limits
    cell_timeout: float
    parameters: dict
    hide: list
    expose: list
    max_bytes: int
    execute_notebooks: bool
    keep_work: bool
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)


def _python() -> list[str]:
    # -P: no current folder on sys.path, so nothing but the grader's own modules load into pytest
    return [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else [])]


def _sandboxed(batch: _Batch, box: Path, folder: Path, label: str, command: list, extra_env: dict,
               deadline: float):
    if batch.cancel.is_set():
        raise Rejected("interrupted", "grading was interrupted before this submission's runs")
    limits = dataclasses.replace(batch.limits, wall_seconds=max(0.1, deadline - time.monotonic()))
    for sub in ("home", "tmp"):
        (box / sub).mkdir(exist_ok=True)
    env = sandbox.environment(box / "home", box / "tmp", extra=extra_env)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    return sandbox.run(command, box, cwd=box, env=env, hide=batch.hide, expose=batch.expose,
                       limits=limits, stdout_path=logs / f"{label}.stdout.log",
                       stderr_path=logs / f"{label}.stderr.log", cancel=batch.cancel)


def run_checks(batch: _Batch, repo: Path, box: Path, folder: Path, deadline: float) -> dict:
    """nbval on the instructor's notebooks inside a copy of `repo` (see module docstring, steps 2-3).
    Returns {"run": sandbox result, "report": JUnit bytes or None, "record": verified outcomes or None,
    "tampered": bool}."""
    import nbformat

    sandbox.copy_tree(repo, box / "repo", batch.max_bytes, MAX_FILES, SKIPPED_DIRS)
    nb_dir = box / "repo" / "notebooks"
    if nb_dir.exists() and not nb_dir.is_dir():
        nb_dir.unlink()
    nb_dir.mkdir(exist_ok=True)
    names = sorted({c.notebook for c in batch.instructor.checks})
    for name in names:
        if (nb_dir / name).is_dir():  # the student's folder of that name must not stop the copy
            sandbox.remove_tree(nb_dir / name)
        nbformat.write(batch.instructor.notebooks[name], str(nb_dir / name))
    token = secrets.token_hex(32)
    command = [*_python(), "-m", "pytest", "--nbval-lax", "--nbval-current-env",
               f"--nbval-cell-timeout={batch.cell_timeout:g}", f"--junitxml={box / 'report.xml'}",
               "-p", "no:cacheprovider", "-p", "nbval.plugin", "-p", HELPER_NAME, "--noconftest",
               "-c", str(batch.helper_dir / "pytest.ini"), f"--rootdir={box}", "--color=no", "-q",
               *(f"repo/notebooks/{n}" for n in names)]
    # no plugin of the grader's environment but nbval's and ours loads (and none loads slower)
    extra = {"PYTHONPATH": str(batch.helper_dir), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", TOKEN_VAR: token,
             RECORD_VAR: str(box / "record.json"), KERNEL_PATH_VAR: str(box / "repo")}
    result = _sandboxed(batch, box, folder, "checks", command, extra, deadline)
    report = sandbox.read_back(box, "report.xml")
    raw = sandbox.read_back(box, "record.json")
    record, tampered = None, False
    if raw is not None:
        try:
            signed = json.loads(raw)
            text = json.dumps(signed["payload"], sort_keys=True)
            good = hmac.new(token.encode(), text.encode(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(str(signed["hmac"]), good):
                record = signed["payload"]
            else:
                tampered = True
        except (ValueError, KeyError, TypeError):
            tampered = True
    elif report is not None:
        tampered = True  # pytest writes both at the end of the session; only the report is left
    return {"run": result, "report": report, "record": record, "tampered": tampered, "box": box}


def run_own_notebooks(batch: _Batch, repo: Path, box: Path, folder: Path, deadline: float) -> dict:
    """The student's notebooks as submitted, with papermill in a sandbox on a fresh copy; the executed
    copies go to folder/executed/. Returns {"run", "notebooks": [{"name", "ok", "error", "path"}]}."""
    import nbformat

    names = sorted(p.name for p in (repo / "notebooks").glob(NOTEBOOK_PATTERN)) \
        if (repo / "notebooks").is_dir() else []
    if not names:
        return {"run": None, "notebooks": []}
    sandbox.copy_tree(repo, box / "repo", batch.max_bytes, MAX_FILES, SKIPPED_DIRS)
    (box / "executed").mkdir()
    nb_dir = box / "repo" / "notebooks"
    spec = {"notebooks": [{"input": str(nb_dir / n), "output": str(box / "executed" / n), "cwd": str(nb_dir)}
                          for n in names],
            "parameters": batch.parameters, "cell_timeout": batch.cell_timeout,
            "status": str(box / "status.json")}
    write_json(box / "spec.json", spec)
    command = [*_python(), str(batch.helper_dir / f"{HELPER_NAME}.py"), "papermill", str(box / "spec.json")]
    result = _sandboxed(batch, box, folder, "notebooks", command, {KERNEL_PATH_VAR: str(box / "repo")},
                        deadline)
    try:
        status = {e["name"]: e for e in json.loads(sandbox.read_back(box, "status.json") or b"[]")
                  if isinstance(e, dict) and isinstance(e.get("name"), str)}
    except (ValueError, TypeError):
        status = {}
    found = []
    for name in names:
        data = sandbox.read_back(box, "executed", name)
        entry = {"name": name, "ok": False, "error": None, "path": None}
        if data is not None:
            target = folder / "executed" / name
            target.parent.mkdir(exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
            entry["path"] = str(target)
        told = status.get(name, {})
        if told.get("ok") is True and data is not None:
            entry["ok"] = True
        elif told.get("error"):
            entry["error"] = _one_line(told["error"])
        elif data is not None:
            entry["error"] = _one_line(_first_error(data, nbformat) or "did not run to the end")
        else:
            entry["error"] = "did not run (time limit, or the run stopped before it)"
        found.append(entry)
    return {"run": result, "notebooks": found}


def _first_error(data: bytes, nbformat) -> str | None:
    try:
        nb = nbformat.reads(data.decode("utf-8", "replace"), as_version=4)
    except Exception:
        return "the executed copy is not a readable notebook"
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i + 1} raised {out.get('ename')}: {str(out.get('evalue'))[:500]}"
    return None


# ----------------------------------------------------------------------------- reading the results


_ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;]*[A-Za-z]")


def junit_cases(data: bytes | None) -> dict:
    """{(classname, name): {"outcome", "text", "seconds"}} of a JUnit XML report; {} when unreadable.
    outcome: passed, failed, error (setup failed) or skipped; a teardown error does not undo a pass."""
    import xml.etree.ElementTree as ET

    if not data or b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # pytest writes neither; entities can bomb
        return {}
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return {}
    cases = {}
    for case in root.iter("testcase"):
        outcome, text = "passed", ""
        failure, error, skipped = case.find("failure"), case.find("error"), case.find("skipped")
        if failure is not None:
            outcome, text = "failed", failure.text or failure.get("message", "")
        elif error is not None and not error.get("message", "").startswith("failed on teardown"):
            outcome, text = "error", error.text or error.get("message", "")
        elif skipped is not None:
            outcome, text = "skipped", skipped.get("message", "") or skipped.text or ""
        try:
            seconds = float(case.get("time", "nan"))
        except ValueError:
            seconds = float("nan")
        cases[(case.get("classname", ""), case.get("name", ""))] = {
            "outcome": outcome, "text": _ANSI.sub("", text), "seconds": seconds}
    return cases


def junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) pytest's junitxml gives a test id (its mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def describe_failure(text: str) -> tuple[str, str]:
    """(why, what came) from nbval's failure text: "Cell outputs differ" and the output the cell gave,
    or "Cell execution caused an exception" and the end of the traceback."""
    text = _ANSI.sub("", text or "")
    why = next((line.split(":", 1)[1].strip() for line in text.splitlines() if re.match(r"Cell \d+: ", line)),
               text.strip().splitlines()[0] if text.strip() else "no result")
    detail = text.split("\nTraceback:\n", 1)[1] if "\nTraceback:\n" in text else text
    match = re.search(r"assert reference_output == test_output failed:\n\n\s*(.*?) == (.*)\n", detail)
    if match:
        import ast

        with contextlib.suppress(ValueError, SyntaxError):
            came = ast.literal_eval(match.group(2))
            if isinstance(came, str):
                return why, came
    lines = [line for line in detail.strip().splitlines() if line.strip()]
    return why, "\n".join(lines[-15:])


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(x: float) -> str:
    return f"{x:g}"


def _size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def _checks_named(ids: list[str]) -> str:
    return ("check " if len(ids) == 1 else "checks ") + ", ".join(repr(i) for i in ids)


def score(batch: _Batch, run: dict) -> tuple[dict, list[tuple[str, str]]]:
    """Points per check from the JUnit report, and the (code, line) problems the run shows."""
    cases = junit_cases(run["report"])
    signed = (run["record"] or {}).get("outcomes", {})
    checks, disagree = {}, False
    for c in batch.instructor.checks:
        nodeid = f"repo/notebooks/{c.notebook}::Cell {c.code_cell}"
        case = cases.get(junit_key(nodeid))
        mine = signed.get(nodeid, {}) if isinstance(signed, dict) else {}
        outcome = case["outcome"] if case else "missing"
        disagree |= bool(case) and run["record"] is not None and mine.get("outcome") != outcome
        # paths as the student knows them: relative to the repository
        text = case["text"].replace(f"{run['box'] / 'repo'}{os.sep}", "") if case else ""
        checks[c.grade_id] = {"points": c.points, "earned": 0.0, "outcome": outcome, "notebook": c.notebook,
                              "cell": c.cell + 1, "hidden": c.hidden, "text": text,
                              "seconds": case["seconds"] if case else None,
                              "cut": int(mine.get("cut", 0) or 0)}
    tampered = run["tampered"] or disagree
    if not tampered and run["record"] is not None:
        for entry in checks.values():
            if entry["outcome"] == "passed":
                entry["earned"] = entry["points"]
    problems = []
    res, limits = run["run"], batch.limits
    failed = {gid: e for gid, e in checks.items() if e["outcome"] != "passed"}
    hung = [g for g, e in failed.items() if "Timeout of" in e["text"]]
    if res.timed_out:
        problems.append(("hung", f"hung: the checks did not finish within the submission's "
                                 f"{_fmt(limits.wall_seconds)} s and were stopped; every check without a "
                                 "result scores 0"))
    elif hung:
        problems.append(("hung", f"hung: {_checks_named(hung)} ran past the {_fmt(batch.cell_timeout)} s "
                                 "limit per cell (nbval then gives up on the cells after it)"))
    died = [g for g, e in failed.items() if re.search(r"Kernel (dead|died)|DeadKernel", e["text"])]
    if not res.timed_out and (res.returncode not in (0, 1) or run["report"] is None or died):
        if died:
            how = (f"the notebook's kernel died during {_checks_named(died[:1])} (killed, or the code "
                   "exited); the checks after it score 0")
        elif run["report"] is not None:
            how = f"pytest stopped with exit status {res.returncode} (see logs/checks.stdout.log)"
        else:
            how = f"the checks left no report (exit status {res.returncode}; see logs/checks.stderr.log)"
        problems.append(("crashed", f"crashed: {how}"))
    oom = [g for g, e in failed.items() if re.search(r"MemoryError|bad_alloc", e["text"])]
    if oom or res.memory_exceeded:
        where = _checks_named(oom) if oom else "the checks"
        problems.append(("out_of_memory", f"ran out of memory: {where} went past the limit of "
                                          f"{_size(limits.memory_bytes)} per process"))
    cut = [g for g, e in checks.items() if e["cut"]]
    if cut or res.output_truncated:
        where = _checks_named(cut) if cut else "the checks"
        problems.append(("printed_too_much", f"printed too much: {where} wrote more than "
                         f"{_size(limits.output_bytes)} to stdout or stderr, or a failure longer than the "
                         "report keeps; the rest was dropped"))
    if tampered:
        problems.append(("tampered", "tampered: the test report does not match the grader's own record of "
                                     "the run; every check scores 0"))
    return checks, problems


def student_answers(repo: Path | None, instructor: Instructor) -> dict:
    """{grade_id: {"text", "note"}}: each written answer's text from the student's own notebook."""
    import nbformat

    found = {}
    for a in instructor.answers:
        path = repo / "notebooks" / a.notebook if repo else None
        entry = {"text": None, "note": None}
        if path is None or not path.is_file():
            entry["note"] = f"notebooks/{a.notebook} is missing from the submission"
        else:
            try:
                nb = nbformat.reads(path.read_text("utf-8", "replace"), as_version=4)
                cells = [c for c in nb.cells
                         if (c.get("metadata", {}).get("nbgrader") or {}).get("grade_id") == a.grade_id]
            except Exception as e:
                cells, entry["note"] = [], f"notebooks/{a.notebook} is not a readable notebook ({e})"
            if cells:
                entry["text"] = str(cells[0].source)
                if entry["text"].strip() == a.template.strip():
                    entry["note"] = "not answered: the cell still holds the template text"
            elif entry["note"] is None:
                entry["note"] = f"no cell with grade_id {a.grade_id!r} in notebooks/{a.notebook}"
        found[a.grade_id] = entry
    return found


# ----------------------------------------------------------------------------- one submission


def _reset(folder: Path) -> None:
    """Empty OUT/NAME before grading it again; refuse a folder the grader did not make."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(f"{folder}: exists and is not a grading folder; move it away or choose "
                          "another --out")
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).is_file():
        raise ConfigError(f"{folder}: exists and was not written by the grader; move it away or choose "
                          "another --out")
    sandbox.remove_tree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("written by python -m pose_utils grade; emptied when graded again\n")


def grade_one(batch: _Batch, name: str, source: Path) -> dict:
    """Grade one submission into OUT/NAME/ (feedback.md, result.json, report.xml, logs/, executed/).
    Never raises for a bad submission: its problems become lines of the result."""
    folder = batch.out_dir / name
    tic = time.monotonic()
    deadline = tic + batch.limits.wall_seconds
    result = {"name": name, "source": str(source), "problems": [], "checks": {}, "answers": {},
              "notebooks": [], "runs": {}, "total": 0.0, "max": batch.instructor.max_points}
    work = folder / "work"
    repo = None
    try:
        work.mkdir()
        repo, left_out = stage(source, work / "submission", batch.max_bytes)
        if left_out:
            result["problems"].append(("symlinks", f"left out {len(left_out)} symbolic links or special "
                                                   f"files (first: {left_out[0]})"))
        errors = syntax_errors(repo)
        if errors:
            result["problems"].append(("syntax_error", f"syntax error: {errors[0]}" +
                                       (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")))
        missing = [n for n in batch.instructor.notebooks if not (repo / "notebooks" / n).is_file()]
        if missing:
            result["problems"].append(("notebooks_missing", "deleted notebooks: " + ", ".join(
                f"notebooks/{n}" for n in missing) + " not in the submission (checks ran from the "
                "instructor's copies; written answers in them are missing)"))
        result["answers"] = student_answers(repo, batch.instructor)
        if batch.instructor.checks:
            run = run_checks(batch, repo, work / "checks", folder, deadline)
            if run["report"] is not None:
                with atomic_path(folder / "report.xml") as tmp:
                    tmp.write_bytes(run["report"])
            result["runs"]["checks"] = run["run"].to_dict()
            result["checks"], problems = score(batch, run)
            result["problems"] += problems
        if batch.execute_notebooks and deadline - time.monotonic() < 1:
            result["problems"].append(("hung", "hung: the checks used up the submission's time; its own "
                                               "notebooks did not run"))
        elif batch.execute_notebooks:
            own = run_own_notebooks(batch, repo, work / "notebooks", folder, deadline)
            result["notebooks"] = own["notebooks"]
            if own["run"] is not None:
                result["runs"]["notebooks"] = own["run"].to_dict()
                if own["run"].timed_out:
                    result["problems"].append(("hung", "hung: the notebooks as submitted did not finish "
                                                       f"within the submission's "
                                                       f"{_fmt(batch.limits.wall_seconds)} s"))
            bad = [n for n in own["notebooks"] if not n["ok"]]
            if bad:
                result["problems"].append(("notebook_errors", f"notebooks/{bad[0]['name']} as submitted does "
                                           f"not run: {bad[0]['error']}" +
                                           (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")))
    except Rejected as e:
        result["problems"].append((e.code, str(e)))
    except Exception as e:  # a grader bug or a full disk must not stop the batch
        result["problems"].append(("grader_error", f"grading stopped: {type(e).__name__}: {e}"))
    finally:
        if not batch.keep_work:
            with contextlib.suppress(OSError):
                sandbox.remove_tree(work)
    result["total"] = sum(e["earned"] for e in result["checks"].values())
    result["seconds"] = round(time.monotonic() - tic, 2)
    result["status"] = " ".join(dict.fromkeys(code for code, _ in result["problems"])) or "ok"
    # one line each, whatever an exception message held
    result["problems"] = [{"code": code, "line": _one_line(line)} for code, line in result["problems"]]
    write_json(folder / "result.json", result)
    with atomic_path(folder / "feedback.md") as tmp:
        tmp.write_text(feedback(result, batch.instructor), encoding="utf-8")
    return result


# ----------------------------------------------------------------------------- feedback and grade sheets


def _fence(text: str, lang: str = "") -> str:
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _cut(text: str, limit: int = MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters]"


def feedback(result: dict, instructor: Instructor) -> str:
    """feedback.md of one graded submission (see docs/assignment.md, "Grading")."""
    by_id = {c.grade_id: c for c in instructor.checks}
    answer_points = sum(a.points for a in instructor.answers)
    lines = [f"# Feedback: {result['name']}", "",
             f"**Automatic checks: {_fmt(result['total'])} / {_fmt(result['max'])} points.**" +
             (f" Written answers ({_fmt(answer_points)} points) are graded by hand."
              if instructor.answers else ""),
             ""]
    lines += [f"- {p['line']}" for p in result["problems"]]
    if result["problems"]:
        lines.append("")
    if result["checks"]:
        rows = [["check", "notebook", "cell", "points", "result"]]
        for gid, e in result["checks"].items():
            rows.append([gid + (" (hidden)" if e["hidden"] else ""), e["notebook"], str(e["cell"]),
                         f"{_fmt(e['earned'])} / {_fmt(e['points'])}", e["outcome"]])
        lines += ["## Checks", "", markdown_table(rows), ""]
    failed = [(gid, e) for gid, e in result["checks"].items() if e["earned"] < e["points"]]
    if failed:
        lines += ["## Failed checks", ""]
    for gid, e in failed:
        check = by_id[gid]
        lines += [f"### {gid}: {_fmt(e['earned'])} / {_fmt(e['points'])} points "
                  f"({e['notebook']}, cell {e['cell']})", ""]
        why, came = describe_failure(e["text"]) if e["text"] else ("no result", "")
        if e["outcome"] == "skipped" and "timed out" in e["text"]:
            why, came = "not run to a result: an earlier cell timed out", ""
        elif e["outcome"] == "missing":
            why = "no result: the run stopped before this cell (see the lines above)"
        elif e["outcome"] == "passed":
            why = "passed, but the report could not be trusted"
        unwritten = re.search(rf"NotImplementedError: ({re.escape(EXERCISE_PREFIX)}.*)", e["text"])
        if unwritten:  # the student version's placeholder, still there
            why, came = f"not written yet ({unwritten.group(1).strip().rstrip('.')})", ""
        if check.hidden:
            lines += [f"A hidden check (its cell and expected output are not shown): {why}.", ""]
            continue
        lines += [f"{why}.", "", "The cell:", "", _fence(check.source, "python"), "",
                  "Expected:", "", _fence(check.expected or "(no output)"), ""]
        if came:
            lines += ["What came:", "", _fence(_cut(came)), ""]
    if instructor.answers:
        lines += ["## Written answers (graded by hand)", ""]
        for a in instructor.answers:
            entry = result["answers"].get(a.grade_id, {})
            lines += [f"### {a.grade_id} ({_fmt(a.points)} points, {a.notebook})", ""]
            if entry.get("note"):
                lines += [f"*{entry['note']}*", ""]
            if entry.get("text"):
                lines += ["\n".join("> " + line for line in _cut(entry["text"]).splitlines()), ""]
    if result["notebooks"]:
        lines += ["## Your notebooks as submitted", ""]
        for nb in result["notebooks"]:
            state = "ran to the end" if nb["ok"] else nb["error"]
            where = (f"; executed copy: executed/{nb['name']}" if nb["path"] else "")
            lines.append(f"- {nb['name']}: {state}{where}")
        lines.append("")
    return "\n".join(lines)


def _row(result: dict, ids: list) -> list:
    earned = [_fmt(result["checks"][g]["earned"]) if g in result["checks"] else "0" for g in ids]
    return [result["name"], *earned, _fmt(result["total"]), result["status"]]


def write_grades(out_dir: Path, results: list, instructor: Instructor) -> None:
    """OUT/grades.csv (a row a student, a column a check, total, status) and OUT/grades.md."""
    ids = [c.grade_id for c in instructor.checks]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *ids, "total", "status"])
    for r in results:
        writer.writerow(_row(r, ids))
    with atomic_path(out_dir / "grades.csv") as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    answer_points = sum(a.points for a in instructor.answers)
    rows = [["student", *(f"{c.grade_id} ({_fmt(c.points)})" for c in instructor.checks),
             f"total ({_fmt(instructor.max_points)})", "status"]]
    rows += [_row(r, ids) for r in results]
    lines = ["# Grades", "",
             f"{len(results)} submissions; automatic checks worth {_fmt(instructor.max_points)} points" +
             (f", written answers worth {_fmt(answer_points)} more, graded by hand from each NAME/feedback.md"
              if instructor.answers else "") + ".", "", markdown_table(rows), ""]
    troubled = [r for r in results if r["problems"]]
    if troubled:
        lines += ["## Problems", ""]
        lines += [f"- {r['name']}: {p['line']}" for r in troubled for p in r["problems"]]
        lines.append("")
    with atomic_path(out_dir / "grades.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")


# ----------------------------------------------------------------------------- the batch


def submission_names(paths) -> list[tuple[str, Path]]:
    """(NAME, path) for each submission, sorted: the folder's or the zip's name with anything but
    letters, digits, '.', '_' and '-' made '_'; a repeated name gets -2, -3, ... in path order."""
    named = []
    for p in paths:
        path = Path(p)
        stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
        name = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip(".") or "submission"
        # not the sheets' own names, nor a leading '-' (a flag to a shell, a formula to a spreadsheet)
        if name.lower() in ("grades.csv", "grades.md") or name.startswith("-"):
            name = "_" + name
        named.append((name, path))
    named.sort(key=lambda item: (item[0], str(item[1].resolve())))
    seen: dict = {}
    unique = []
    for name, path in named:
        seen[name] = seen.get(name, 0) + 1
        unique.append((name if seen[name] == 1 else f"{name}-{seen[name]}", path))
    return sorted(unique)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _grader_source_root() -> Path | None:
    """The checkout the grader's own pose_utils runs from (editable install), hidden like the
    instructor's repository; None when it is installed into site-packages."""
    package = Path(__file__).resolve().parents[1]
    return None if "site-packages" in package.parts or "dist-packages" in package.parts else package.parent


def _path_parameters(parameters: dict) -> tuple[dict, list[Path]]:
    """String values with a '/' that name an existing path become absolute (the kernels run in the
    copy's notebooks/ folder); they are bound read-only into the sandbox."""
    out, paths = {}, []
    for key, value in parameters.items():
        if isinstance(value, str) and "/" in value and Path(value).expanduser().exists():
            resolved = Path(value).expanduser().resolve()
            out[key] = str(resolved)
            paths.append(resolved)
        else:
            out[key] = value
    return out, paths


def grade(submissions, out_dir, instructor_root, jobs: int = 1, timeout: float = DEFAULT_TIMEOUT,
          cell_timeout: float = DEFAULT_CELL_TIMEOUT, parameters: dict | None = None, *,
          limits: sandbox.Limits | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
          execute_notebooks: bool = True, keep_work: bool = False, progress=None) -> list[dict]:
    """Grade every submission (a folder or a .zip) into out_dir/NAME/, `jobs` at a time, then write
    out_dir/grades.csv and grades.md. Returns the results (result.json's content), sorted by NAME.

    timeout: the wall-clock limit of a submission in all (its checks first, then its own notebooks get
    what is left); cell_timeout: nbval's and papermill's limit per cell; limits: the sandbox's other
    limits (memory, output, CPU); keep_work: keep OUT/NAME/work/ (the copies the runs used) for debugging;
    progress: called with one line per graded submission.
    """
    sandbox.require()
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer, got {jobs!r}")
    for label, value in (("--timeout", timeout), ("--cell-timeout", cell_timeout)):
        if not (isinstance(value, (int, float)) and 0 < value < float("inf")):
            raise ConfigError(f"{label} must be a positive number of seconds, got {value!r}")
    paths = [Path(p) for p in submissions]
    if not paths:
        raise ConfigError("no submissions given")
    absent = [str(p) for p in paths if not p.exists()]
    if absent:
        raise DataError(f"submission not found: {', '.join(absent)}")
    out_dir = Path(out_dir).resolve()
    instructor_root = Path(instructor_root).resolve()
    notebooks_dir = instructor_root / "notebooks"
    parameters, data_paths = _path_parameters(dict(parameters or {}))
    instructor = read_instructor(instructor_root, parameters)
    if _inside(notebooks_dir, out_dir) or _inside(out_dir, notebooks_dir):
        raise ConfigError(f"--out {out_dir}: must not contain or lie in the instructor's notebooks folder")
    for p in paths:
        if _inside(out_dir, p.resolve()):
            raise ConfigError(f"--out {out_dir}: lies inside the submission {p}")
    helper_dir = out_dir / ".grader"
    python_roots = {Path(p).resolve() for p in (sys.prefix, sys.exec_prefix, sys.base_prefix,
                                                sys.base_exec_prefix)}
    expose = sorted(python_roots | set(data_paths) | {helper_dir})
    for e in expose:
        if _inside(notebooks_dir, e) or _inside(e, notebooks_dir):
            raise ConfigError(f"{e}: would make the instructor's notebooks readable to submissions (a data "
                              "parameter or the grader's Python lies over or in them)")
    hide = [instructor_root, out_dir, Path.home(), *(p.resolve() for p in paths)]
    source_root = _grader_source_root()
    if source_root is not None:
        hide.append(source_root)
    named = submission_names(paths)
    for name, _ in named:
        _reset(out_dir / name)
    helper_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(helper_dir / f"{HELPER_NAME}.py") as tmp:
        tmp.write_text(HELPER_SOURCE)
    with atomic_path(helper_dir / "pytest.ini") as tmp:
        tmp.write_text("[pytest]\n")
    limits = dataclasses.replace(limits or sandbox.Limits(), wall_seconds=float(timeout))
    batch = _Batch(instructor, out_dir, helper_dir, limits, float(cell_timeout), parameters, hide, expose,
                   max_bytes, execute_notebooks, keep_work)
    lock = threading.Lock()
    done = []

    def one(item):
        name, path = item
        result = grade_one(batch, name, path)
        with lock:
            done.append(result)
            if progress:
                progress(f"[{len(done)}/{len(named)}] {name}: {_fmt(result['total'])} / "
                         f"{_fmt(result['max'])} ({result['status']}) in {result['seconds']:.1f} s")
        return result

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        results = list(pool.map(one, named))
    except BaseException:  # Ctrl-C: stop the sandboxes now, not when their limits run out
        batch.cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    results.sort(key=lambda r: r["name"])
    write_grades(out_dir, results, instructor)
    return results


def _repository_root() -> Path:
    source = _grader_source_root()
    return source if source is not None and (source / "notebooks").is_dir() else Path.cwd()


def given_flag(args, name, default):
    """A flag the parser left at None takes the engine's default."""
    value = getattr(args, name, None)
    return default if value is None else value


def grading_parameters(instructor, out_dir: Path) -> dict:
    """GRADING_PARAMETERS that the instructor's graded notebooks take, and `data_dir`: the tiny preset
    rendered into OUT/GRADING_DATA (once; a later batch into the same OUT reuses it)."""
    from ..dataset import make_config, make_data
    from .provision import has_dataset

    names = set(read_instructor(instructor).parameters)
    data_dir = Path(out_dir) / GRADING_DATA
    if "data_dir" in names and not has_dataset(data_dir):
        make_data(make_config(data_dir, preset="tiny", format="h5", workers=1), progress=False)
    defaults = {**GRADING_PARAMETERS, "data_dir": str(data_dir.resolve())}
    return {k: v for k, v in defaults.items() if k in names}


def main(args: argparse.Namespace) -> int:
    """`python -m pose_utils grade SUBMISSION... --out DIR [--jobs N] [--timeout S] [--cell-timeout S]
    [--instructor DIR] [-p NAME VALUE ...]`."""
    from .runner import parse_value

    parameters = {}
    for name, value in getattr(args, "parameter", None) or []:
        if not name.isidentifier():
            raise ConfigError(f"-p {name}: a parameter name must be a Python identifier")
        parameters[name] = parse_value(value)
    limits = sandbox.Limits()
    memory = getattr(args, "memory", None)  # GiB
    if memory is not None:
        limits = dataclasses.replace(limits, memory_bytes=int(memory * sandbox.GiB))
    out_dir = Path(args.out)
    instructor = given_flag(args, "instructor", None) or _repository_root()
    parameters = {**grading_parameters(instructor, out_dir), **parameters}

    results = grade(args.submissions, out_dir, instructor, jobs=given_flag(args, "jobs", 1),
                    timeout=given_flag(args, "timeout", DEFAULT_TIMEOUT),
                    cell_timeout=given_flag(args, "cell_timeout", DEFAULT_CELL_TIMEOUT),
                    parameters=parameters, limits=limits,
                    execute_notebooks=not getattr(args, "checks_only", False),
                    progress=lambda line: print(line, flush=True))
    troubled = sum(1 for r in results if r["status"] != "ok")
    print(f"graded {len(results)} submissions ({troubled} with problems): {out_dir / 'grades.csv'}, "
          f"{out_dir / 'grades.md'}, feedback in {out_dir}/NAME/feedback.md")
    return 0
