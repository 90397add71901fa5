"""Steps 2 and 4 of grading a submission (grade's docstring): its two runs in the sandbox.

`run_checks` runs nbval on the instructor's notebooks in a copy of the submission, `run_own_notebooks`
the student's notebooks as submitted; both go through sandbox with the grader's side,
pose_course/instructor/grading/plugin.py (and check_outputs.py), copied into the batch's helper folder by
`write_helper`. What each run reports comes through its channel; files it leaves in
its folder are read back as untrusted data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import threading
import time
from pathlib import Path

from pose_course import check_outputs
from pose_course.instructor.grading import sandbox
from pose_course.instructor.grading.answer_key import Instructor
from pose_course.instructor.grading.channel import CHANNEL_VAR, Channel
from pose_course.instructor.grading.host_identity import new_identity
from pose_course.instructor.grading.intake import MAX_FILES, SKIPPED_DIRS
from pose_course.instructor.grading.results import ChecksRun, NotebookRun, OwnRun
from pose_course.instructor.grading.untrusted import Rejected, copy_tree, read_back, remove_tree
from pose_course.runner import NOTEBOOK_PATTERN
from pose_course.tracebacks import error_line, strip_colours
from pose_utils.fileio import atomic_path, write_json
from pose_utils.training.runfolder import MODEL_FILE

# The module name the sandboxed pytest loads grading/plugin.py under (-p), and the file name it has there;
# check_outputs.py goes beside it under its own name (the plugin imports it).
HELPER_NAME = "_pose_utils_grader"
HELPER_FILES = {f"{HELPER_NAME}.py": Path(__file__).with_name("plugin.py"),
                "_pose_utils_check_outputs.py": Path(check_outputs.__file__)}
# What the model run (step 2b) writes in its folder, read back by grading/model_grade.py.
PREDICTIONS = "predictions.npy"
# How the plugin learns the kernels' PYTHONPATH; grading/plugin.py spells the same name out.
KERNEL_PATH_VAR = "POSE_UTILS_GRADER_KERNEL_PATH"


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
    model_rule: object = None  # model_grade.ModelRule with --hidden-data, else None
    hidden: object = None  # model_grade.HiddenSet: the labels stay in the grader's process
    isolation: str = sandbox.BUBBLEWRAP  # or container_user's weaker mode (grade --isolation)
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def grader_paths(self) -> list[Path]:
        """The grader's folders a run's messages may name, shown to students as <grader>."""
        return [self.out_dir, self.helper_dir]


def write_helper(helper_dir: Path) -> None:
    """The batch's helper folder, readable by the sandbox's uid: the plugin and check_outputs.py
    (HELPER_FILES) and the empty pytest.ini the checks run with (`-c`), so pytest reads no ini file of
    the submission."""
    helper_dir.mkdir(parents=True, exist_ok=True)
    helper_dir.chmod(0o755)
    texts = {name: src.read_text(encoding="utf-8") for name, src in HELPER_FILES.items()}
    for name, text in {**texts, "pytest.ini": "[pytest]\n"}.items():
        with atomic_path(helper_dir / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
            tmp.chmod(0o644)


def _python() -> list[str]:
    # -P: no current folder on sys.path, so nothing but the grader's own modules load into pytest
    return [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else [])]


def _sandboxed(batch: Batch, box: Path, folder: Path, label: str, command: list, extra_env: dict,
               deadline: float) -> tuple[sandbox.Result, Channel]:
    """Run `command` in the sandbox on `box` with a channel of its own (its messages read, the channel
    closed when this returns)."""
    if batch.cancel.is_set():
        raise Rejected("interrupted", "grading was interrupted before this submission's runs")
    limits = dataclasses.replace(batch.limits, wall_seconds=max(0.1, deadline - time.monotonic()))
    for sub in ("home", "tmp"):
        (box / sub).mkdir(exist_ok=True)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    who = new_identity()
    with Channel(who) as channel:
        env = sandbox.environment(box / "home", box / "tmp",
                                  extra={**extra_env, CHANNEL_VAR: str(channel.path)})
        result = sandbox.run(command, box, cwd=box, env=env, hide=batch.hide,
                             expose=[*batch.expose, channel.folder], limits=limits,
                             stdout_path=logs / f"{label}.stdout.log",
                             stderr_path=logs / f"{label}.stderr.log", cancel=batch.cancel, who=who,
                             isolation=batch.isolation)
    return result, channel


def run_checks(batch: Batch, repo: Path, box: Path, folder: Path, deadline: float) -> ChecksRun:
    """nbval on the instructor's notebooks inside a copy of `repo` (grade's docstring,
    steps 2-3): what it reported, for `scoring.score`."""
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
    command = [*_python(), "-m", "pytest", "--nbval-lax", "--nbval-current-env",
               f"--nbval-cell-timeout={batch.cell_timeout:g}", f"--junitxml={box / 'report.xml'}",
               "-p", "no:cacheprovider", "-p", "nbval.plugin", "-p", HELPER_NAME, "--noconftest",
               "-c", str(batch.helper_dir / "pytest.ini"), f"--rootdir={box}", "--color=no", "-q",
               *(f"repo/notebooks/{n}" for n in names)]
    # no plugin of the grader's environment but nbval's and ours loads (and none loads slower)
    extra = {"PYTHONPATH": str(batch.helper_dir), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
             KERNEL_PATH_VAR: str(box / "repo")}
    result, channel = _sandboxed(batch, box, folder, "checks", command, extra, deadline)
    report = read_back(box, "report.xml")
    results, finish = {}, None
    for m in channel.messages():
        if m.get("type") == "result" and isinstance(m.get("nodeid"), str):
            results[m["nodeid"]] = m
        elif m.get("type") == "finish":
            finish = m
    if finish is not None:  # the report must be the one pytest wrote, as the plugin hashed it then
        digest = hashlib.sha256(report).hexdigest() if report is not None else None
        tampered = finish.get("report_sha256") != digest
    else:  # pytest never finished, so it wrote no report: one that is there came from elsewhere
        tampered = report is not None
    return ChecksRun(run=result, report=report, results=results, finish=finish, tampered=tampered,
                     overflow=channel.overflow, box=box)


def run_own_notebooks(batch: Batch, repo: Path, box: Path, folder: Path, deadline: float) -> OwnRun:
    """The student's notebooks as submitted, with papermill in a sandbox on a fresh copy; the executed
    copies go to folder/executed/."""
    import nbformat

    names = sorted(p.name for p in (repo / "notebooks").glob(NOTEBOOK_PATTERN)) \
        if (repo / "notebooks").is_dir() else []
    if not names:
        return OwnRun(run=None)
    copy_tree(repo, box / "repo", batch.max_bytes, MAX_FILES, SKIPPED_DIRS)
    (box / "executed").mkdir()
    nb_dir = box / "repo" / "notebooks"
    spec = {"notebooks": [{"input": str(nb_dir / n), "output": str(box / "executed" / n), "cwd": str(nb_dir)}
                          for n in names],
            "parameters": batch.parameters, "cell_timeout": batch.cell_timeout}
    write_json(box / "spec.json", spec)
    command = [*_python(), str(batch.helper_dir / f"{HELPER_NAME}.py"), "papermill", str(box / "spec.json")]
    result, channel = _sandboxed(batch, box, folder, "notebooks", command,
                                 {KERNEL_PATH_VAR: str(box / "repo")}, deadline)
    status = {m["name"]: m for m in channel.messages()
              if m.get("type") == "notebook" and isinstance(m.get("name"), str)}
    found = []
    for name in names:
        data = read_back(box, "executed", name)
        entry = NotebookRun(name)
        if data is not None:
            target = folder / "executed" / name
            target.parent.mkdir(exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
            entry.path = str(target)
        told = status.get(name, {})
        if told.get("ok") is True and data is not None:
            entry.ok = True
        elif isinstance(told.get("error"), dict):
            entry.error = one_line(error_line(told["error"], box / "repo", told.get("cell"),
                                                 batch.grader_paths))
        elif data is not None:
            first = _first_error(data, nbformat, box / "repo", batch.grader_paths)
            entry.error = one_line(first or "did not run to the end")
        else:
            entry.error = "did not run (time limit, or the run stopped before it)"
        found.append(entry)
    return OwnRun(run=result, notebooks=found)


def _first_error(data: bytes, nbformat, repo: Path, others) -> str | None:
    try:
        nb = nbformat.reads(data.decode("utf-8", "replace"), as_version=4)
    except Exception:
        return "the executed copy is not a readable notebook"
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                error = {"ename": str(out.get("ename")), "evalue": str(out.get("evalue")),
                         "traceback": [strip_colours(t) for t in out.get("traceback", [])]}
                return error_line(error, repo, i + 1, others)
    return None


def one_line(text: str, limit: int = 400) -> str:
    """A message as result.json holds it: one line of at most `limit` characters, whatever it held."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_model(batch: Batch, repo: Path, box: Path, folder: Path, deadline: float, run: str,
              frames: Path, predict_seconds: float, batch_size: int) -> tuple[Path, bool, str | None]:
    """Step 2b's sandboxed part (grading/model_grade.py): the submission's `run`/model.keras predicts the
    hidden frames into box/predictions.npy. Returns (box, timed out, one line when it failed)."""
    copy_tree(repo, box / "repo", batch.max_bytes, MAX_FILES, SKIPPED_DIRS)
    spec = {"model": str(box / "repo" / run / MODEL_FILE), "frames": str(frames),
            "output": str(box / PREDICTIONS), "batch_size": int(batch_size)}
    write_json(box / "spec.json", spec)
    command = [*_python(), str(batch.helper_dir / f"{HELPER_NAME}.py"), "predict", str(box / "spec.json")]
    limit = min(deadline, time.monotonic() + predict_seconds)
    result, _ = _sandboxed(batch, box, folder, "model", command, {KERNEL_PATH_VAR: str(box / "repo")}, limit)
    if result.timed_out:
        return box, True, None
    if result.returncode != 0:
        log = folder / "logs" / "model.stderr.log"  # the run's stderr as the grader wrote it: its last line
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            tail = f.read().decode("utf-8", "replace")
        lines = [ln for ln in strip_colours(tail).splitlines() if ln.strip()]
        why = "out of memory" if result.memory_exceeded else (lines[-1] if lines else
                                                               f"exit status {result.returncode}")
        return box, False, one_line(f"predicting the hidden clips failed: {why}")
    return box, False, None
