"""Steps 2 and 4 of grading a submission (pose_utils.course.grade's docstring): its two runs in the sandbox.

`run_checks` runs nbval on the instructor's notebooks in a copy of the submission, `run_own_notebooks`
the student's notebooks as submitted; both go through pose_utils.course.sandbox with the grader's side,
pose_utils/course/grader_plugin.py, copied into the batch's helper folder by `write_helper`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from pathlib import Path

from ..fileio import atomic_path, write_json
from . import sandbox
from .instructor import Instructor
from .runner import NOTEBOOK_PATTERN
from .staging import MAX_FILES, SKIPPED_DIRS
from .untrusted import Rejected, copy_tree, read_back, remove_tree

# The module name the sandboxed pytest loads grader_plugin.py under (-p), and the file name it has there.
HELPER_NAME = "_pose_utils_grader"
PLUGIN = Path(__file__).with_name("grader_plugin.py")
# How the plugin learns its key, its record's path and the kernels' PYTHONPATH; grader_plugin.py spells
# the same names out (it cannot import this module).
TOKEN_VAR, RECORD_VAR, KERNEL_PATH_VAR = ("POSE_UTILS_GRADER_TOKEN", "POSE_UTILS_GRADER_RECORD",
                                          "POSE_UTILS_GRADER_KERNEL_PATH")


@dataclasses.dataclass
class Batch:
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


def write_helper(helper_dir: Path) -> None:
    """The batch's helper folder: the plugin (grader_plugin.py's text as HELPER_NAME.py) and the empty
    pytest.ini the checks run with (`-c`), so pytest reads no ini file of the submission."""
    helper_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(helper_dir / f"{HELPER_NAME}.py") as tmp:
        tmp.write_text(PLUGIN.read_text(encoding="utf-8"), encoding="utf-8")
    with atomic_path(helper_dir / "pytest.ini") as tmp:
        tmp.write_text("[pytest]\n")


def _python() -> list[str]:
    # -P: no current folder on sys.path, so nothing but the grader's own modules load into pytest
    return [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else [])]


def _sandboxed(batch: Batch, box: Path, folder: Path, label: str, command: list, extra_env: dict,
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


def run_checks(batch: Batch, repo: Path, box: Path, folder: Path, deadline: float) -> dict:
    """nbval on the instructor's notebooks inside a copy of `repo` (pose_utils.course.grade's docstring,
    steps 2-3). Returns {"run": sandbox result, "report": JUnit bytes or None, "record": verified outcomes
    or None, "tampered": bool}."""
    import nbformat

    copy_tree(repo, box / "repo", batch.max_bytes, MAX_FILES, SKIPPED_DIRS)
    nb_dir = box / "repo" / "notebooks"
    if nb_dir.exists() and not nb_dir.is_dir():
        nb_dir.unlink()
    nb_dir.mkdir(exist_ok=True)
    names = sorted({c.notebook for c in batch.instructor.checks})
    for name in names:
        if (nb_dir / name).is_dir():  # the student's folder of that name must not stop the copy
            remove_tree(nb_dir / name)
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
    report = read_back(box, "report.xml")
    raw = read_back(box, "record.json")
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


def run_own_notebooks(batch: Batch, repo: Path, box: Path, folder: Path, deadline: float) -> dict:
    """The student's notebooks as submitted, with papermill in a sandbox on a fresh copy; the executed
    copies go to folder/executed/. Returns {"run", "notebooks": [{"name", "ok", "error", "path"}]}."""
    import nbformat

    names = sorted(p.name for p in (repo / "notebooks").glob(NOTEBOOK_PATTERN)) \
        if (repo / "notebooks").is_dir() else []
    if not names:
        return {"run": None, "notebooks": []}
    copy_tree(repo, box / "repo", batch.max_bytes, MAX_FILES, SKIPPED_DIRS)
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
        status = {e["name"]: e for e in json.loads(read_back(box, "status.json") or b"[]")
                  if isinstance(e, dict) and isinstance(e.get("name"), str)}
    except (ValueError, TypeError):
        status = {}
    found = []
    for name in names:
        data = read_back(box, "executed", name)
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
            entry["error"] = one_line(told["error"])
        elif data is not None:
            entry["error"] = one_line(_first_error(data, nbformat) or "did not run to the end")
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


def one_line(text: str, limit: int = 400) -> str:
    """A message as result.json holds it: one line of at most `limit` characters, whatever it held."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
