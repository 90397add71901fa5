"""Grade a batch of student submissions: `python -m pose_utils grade SUBMISSION... --out DIR`.

The contract with the notebooks
-------------------------------
- A *check* is a code cell of an instructor notebook (`notebooks/NN_*.ipynb` of the instructor's
  repository) with the tag `check` in `cell.metadata.tags` and nbgrader's metadata, schema 3 in full
  (pose_course.cells.nbgrader_metadata): `cell.metadata.nbgrader = {"schema_version": 3, "grade": true,
  "solution": false, "locked": true, "grade_id": "<unique id>", "points": <number>}`. Its expected
  output is stored in the cell (executed, `execution_count` set) and compared by nbval: the source has a
  line `# NBVAL_CHECK_OUTPUT`. A *hidden* check has the tag `hidden` as well; it exists only in the
  instructor's notebooks, and feedback never shows its source or expected output.
- A *written answer* is a markdown cell tagged `answer` with nbgrader metadata `{"schema_version": 3,
  "grade": true, "solution": true, "locked": false, "grade_id": ..., "points": ...}`: graded by a human;
  the feedback shows the text of the cell with the same grade_id in the student's own notebook.
- grade_ids are unique across all the instructor's notebooks, letters, digits, `_` and `-` (nbgrader's
  rule); points are numbers >= 0.
- Each notebook has a cell tagged `parameters` (papermill's convention); the grading parameters
  (`-p NAME VALUE`, e.g. the grading data's folder) are injected after it, into the notebooks that name
  them. A string value with a '/' that names an existing path is made absolute and readable (read-only)
  inside the sandbox.
- Hidden checks come after the visible ones of their notebook: a check's source runs in the student's
  kernel, so later cells of the student's could print it into feedback; expected outputs never leave pytest.

What happens to one submission (a repository folder, or a .zip of one), in OUT/NAME/
---------------------------------------------------------------------------------
1. It is staged: a .zip is checked before anything is written (no absolute paths, no `..`, no symlinks,
   at most intake.MAX_FILES members and `max_bytes` unpacked, counted while unpacking) and unpacked; a
   folder is copied without symlinks, VCS folders or virtual environments. A repository has
   `pose_utils/__init__.py` at its top (or in its single top-level folder).
2. Checks: a copy of it gets the instructor's notebooks (hidden checks included, parameters injected) in
   its `notebooks/`, and the sandbox (pose_course.instructor.grading.sandbox) runs
   `python -P -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=C --junitxml=report.xml
   -p no:cacheprovider ... NOTEBOOKS` with the grader's own Python. The kernels import the student's
   package first (their PYTHONPATH is the copy's root); pytest itself does not: it reads no conftest.py,
   ini file or module of the submission, which could otherwise rewrite the results (the helper plugin
   grading/plugin.py sets the kernels' PYTHONPATH and the comparisons notebooks/conftest.py skips).
3. Results: nbval names a test case after the notebook and its code cell ("Cell N", counting code cells
   from 0 in the parameterized copy); cells map to checks by that position. The plugin sends each
   result (outcome, the outputs compared, the error raised) through the run's channel
   (channel), which no process of the submission can reach; a passed check earns its
   points, a failed, errored or skipped one 0. The JUnit report pytest leaves in the sandbox must be the
   one it wrote (the plugin sends its digest) and agree with those results, else every check scores 0
   ("tampered"). Printed numbers match within the check's tolerance (pose_course.check_outputs).
4. The student's own notebooks as submitted run with papermill in a second sandbox on a fresh copy, the
   executed copies kept in OUT/NAME/executed/.
5. OUT/NAME/feedback.md, OUT/NAME/result.json, OUT/NAME/report.xml and OUT/NAME/logs/ (the runs' streams);
   at the end OUT/grades.csv and OUT/grades.md, each written under a temporary name, then renamed, with a
   row for every submission graded into OUT so far (this batch's results over older ones).

Hidden checks stay hidden: inside the sandbox the instructor's repository, OUT (but for the run's own
folder), every submission and the caller's home are empty; the instructor's notebooks are written into
the run's folder just before pytest starts and deleted by the plugin once nbval has read them, before any
kernel starts; pytest's memory cannot be read by the kernels (it makes itself non-dumpable).

The modules, each importing only those above it
-----------------------------------------------
- answer_key: the instructor's notebooks read against this contract (Check, Answer, read_instructor);
- intake (with untrusted): step 1;
- results: what each step hands the next (ChecksRun, OwnRun, CheckScore, Answer, Problem, Result);
- runs: steps 2 and 4, and what a batch's submissions share (Batch); plugin is the
  grader's side inside the sandbox, copied there as text and never imported;
- scoring: step 3, and the written answers;
- feedback: step 5's feedback.md and grade sheets;
- grade (this one): one submission, the batch, the command line.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import os
import re
import sys
import sysconfig
import threading
import time
from pathlib import Path

from pose_course.instructor.grading import container_user, sandbox
from pose_course.instructor.grading.answer_key import read_instructor
from pose_course.instructor.grading.feedback import feedback, pseudonyms, write_grades
from pose_course.instructor.grading.host_identity import inside, unreadable
from pose_course.instructor.grading.intake import DEFAULT_MAX_BYTES, stage, submission_time, syntax_errors
from pose_course.instructor.grading.model_grade import (
    HiddenSet,
    ModelRule,
    grade_model,
    reference_mpjpe,
    threshold_warning,
)
from pose_course.instructor.grading.results import Problem, Result
from pose_course.instructor.grading.roster import install
from pose_course.instructor.grading.runs import (
    Batch,
    one_line,
    run_checks,
    run_model,
    run_own_notebooks,
    write_helper,
)
from pose_course.instructor.grading.scoring import fmt, score, student_answers
from pose_course.instructor.grading.similarity import save_written, write_report
from pose_course.instructor.grading.untrusted import Rejected, remove_tree
from pose_utils.errors import ConfigError, DataError
from pose_utils.fileio import atomic_path, write_json

DEFAULT_TIMEOUT = 900.0  # seconds for a submission in all (its checks, then its own notebooks)
# The grading parameters `grade` injects unless -p says otherwise: the smallest runs that still exercise
# every cell (the checks build their own small inputs), on the tiny data rendered once per batch into
# OUT/GRADING_DATA. Only names the graded notebooks' parameters cells have.
GRADING_PARAMETERS = {"frame_size": 64, "epochs": 1, "max_train_clips": 10, "max_valid_clips": 5,
                      "sweep_epochs": 1, "sweep_max_train_clips": 5, "sweep_max_valid_clips": 4,
                      "batch_sizes": [5], "learning_rates": [1e-4]}
GRADING_DATA = "grading-data"
DEFAULT_CELL_TIMEOUT = 300.0
MARKER = ".graded-by-pose-utils"  # OUT/NAME folders the grader may empty before grading again


# ----------------------------------------------------------------------------- one submission


def _reset(folder: Path) -> None:
    """Empty OUT/NAME before grading it again; refuse a folder the grader did not make."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(f"{folder}: exists and is not a grading folder; move it away or choose "
                          "another --out")
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).is_file():
        raise ConfigError(f"{folder}: exists and was not written by the grader; move it away or choose "
                          "another --out")
    remove_tree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("written by python -m pose_utils grade; emptied when graded again\n")


def grade_one(batch: Batch, name: str, source: Path) -> Result:
    """Grade one submission into OUT/NAME/ (feedback.md, result.json, report.xml, logs/, executed/).
    Never raises for a bad submission: its problems become lines of the result."""
    folder = batch.out_dir / name
    tic = time.monotonic()
    deadline = tic + batch.limits.wall_seconds
    result = Result(name=name, source=str(source), max=batch.instructor.max_points +
                    (batch.model_rule.points if batch.hidden is not None else 0))
    problems = result.problems
    work = folder / "work"
    repo = None
    try:
        work.mkdir()
        result.submitted = submission_time(source)
        repo, left_out = stage(source, work / "submission", batch.max_bytes)
        if left_out:
            problems.append(Problem("symlinks", f"left out {len(left_out)} symbolic links or special "
                                                f"files (first: {left_out[0]})"))
        errors = syntax_errors(repo)
        if errors:
            problems.append(Problem("syntax_error", f"syntax error: {errors[0]}" +
                                    (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")))
        missing = [n for n in batch.instructor.notebooks if not (repo / "notebooks" / n).is_file()]
        if missing:
            problems.append(Problem("notebooks_missing", "deleted notebooks: " + ", ".join(
                f"notebooks/{n}" for n in missing) + " not in the submission (checks ran from the "
                "instructor's copies; written answers in them are missing)"))
        result.answers = student_answers(repo, batch.instructor)
        save_written(folder, repo, batch.instructor)
        if batch.instructor.checks:
            run = run_checks(batch, repo, work / "checks", folder, deadline)
            if run.report is not None:
                with atomic_path(folder / "report.xml") as tmp:
                    tmp.write_bytes(run.report)
            result.runs["checks"] = run.run.to_dict()
            result.checks, found = score(batch, run)
            problems += found
        if batch.hidden is not None:
            rule = batch.model_rule

            def predict():
                return run_model(batch, repo, work / "model", folder, deadline, rule.run,
                                 batch.hidden.frames_path, rule.predict_seconds, rule.batch_size)

            result.model = grade_model(predict, repo, batch.hidden, rule)
            result.model.pseudonym = pseudonyms(batch.out_dir, [name])[name]
            if result.model.problem:
                problems.append(Problem("model", f"model: {result.model.problem}"))
        if batch.execute_notebooks and deadline - time.monotonic() < 1:
            problems.append(Problem("hung", "hung: the checks used up the submission's time; its own "
                                            "notebooks did not run"))
        elif batch.execute_notebooks:
            own = run_own_notebooks(batch, repo, work / "notebooks", folder, deadline)
            result.notebooks = own.notebooks
            if own.run is not None:
                result.runs["notebooks"] = own.run.to_dict()
                if own.run.timed_out:
                    problems.append(Problem("hung", "hung: the notebooks as submitted did not finish within "
                                                    f"the submission's {fmt(batch.limits.wall_seconds)} s"))
            bad = [n for n in own.notebooks if not n.ok]
            if bad:
                problems.append(Problem("notebook_errors", f"notebooks/{bad[0].name} as submitted does not "
                                        f"run: {bad[0].error}" +
                                        (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")))
    except Rejected as e:
        problems.append(Problem(e.code, str(e)))
    except Exception as e:  # a grader bug or a full disk must not stop the batch
        problems.append(Problem("grader_error", f"grading stopped: {type(e).__name__}: {e}"))
    finally:
        if not batch.keep_work:
            with contextlib.suppress(OSError):
                remove_tree(work)
    result.total = sum(e.earned for e in result.checks.values()) + (
        result.model.earned if result.model else 0)
    result.seconds = round(time.monotonic() - tic, 2)
    result.status = " ".join(dict.fromkeys(p.code for p in problems)) or "ok"
    for p in problems:  # one line each, whatever an exception message held
        p.line = one_line(p.line)
    write_json(folder / "result.json", result.to_dict())
    with atomic_path(folder / "feedback.md") as tmp:
        tmp.write_text(feedback(result, batch.instructor), encoding="utf-8")
    return result


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


def _grader_source_root() -> Path | None:
    """The checkout the grader's own pose_utils runs from (editable install), hidden like the
    instructor's repository; None when it is installed into site-packages."""
    package = Path(__file__).resolve().parents[2]  # pose_course/
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


@functools.lru_cache(maxsize=1)
def _python_unreadable() -> Path | None:
    """unreadable() of the grader's own Python (about 1 s for TensorFlow's files; once a process): its
    executable and library folders, not its whole prefix, which is /usr for a venv of a system Python."""
    libraries = {Path(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return unreadable(sorted({Path(sys.executable).resolve(), *libraries}))


def grade(submissions, out_dir, instructor_root, jobs: int = 1, timeout: float = DEFAULT_TIMEOUT,
          cell_timeout: float = DEFAULT_CELL_TIMEOUT, parameters: dict | None = None, *,
          limits: sandbox.Limits | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
          execute_notebooks: bool = True, keep_work: bool = False, progress=None,
          hidden_data=None, model_rule: ModelRule | None = None,
          isolation: str = sandbox.BUBBLEWRAP) -> list[dict]:
    """Grade every submission (a folder or a .zip) into out_dir/NAME/, `jobs` at a time, then write
    out_dir/grades.csv and grades.md. Returns the results (result.json's content), sorted by NAME.

    timeout: the wall-clock limit of a submission in all (its checks first, then its own notebooks get
    what is left); cell_timeout: nbval's and papermill's limit per cell; limits: the sandbox's other
    limits (memory, output, CPU); keep_work: keep OUT/NAME/work/ (the copies the runs used) for debugging;
    progress: called with one line per graded submission; isolation: sandbox.BUBBLEWRAP, or
    container_user.NAME in a throwaway container where bwrap cannot run (one submission, weaker).
    """
    sandbox.require(isolation)
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
    if inside(notebooks_dir, out_dir) or inside(out_dir, notebooks_dir):
        raise ConfigError(f"--out {out_dir}: must not contain or lie in the instructor's notebooks folder")
    for p in paths:
        if inside(out_dir, p.resolve()):
            raise ConfigError(f"--out {out_dir}: lies inside the submission {p}")
    helper_dir = out_dir / ".grader"
    expose = sorted(sandbox.python_roots() | set(data_paths) | {helper_dir})
    for e in expose:
        if inside(notebooks_dir, e) or inside(e, notebooks_dir):
            raise ConfigError(f"{e}: would make the instructor's notebooks readable to submissions (a data "
                              "parameter or the grader's Python lies over or in them)")
    if os.geteuid() == 0:  # the sandbox runs as an unprivileged uid of its own (host_identity)
        bad = _python_unreadable() or unreadable(data_paths)
        if bad is not None:
            raise ConfigError(f"{bad}: not readable by other users, and the sandbox runs as one (the grader "
                              "is root): make it readable (chmod -R o+rX on its folder) or use a Python and "
                              "data that every user can read")
    hide = [instructor_root, out_dir, Path.home(), *(p.resolve() for p in paths)]
    if hidden_data is not None:
        hidden_dir = Path(hidden_data).resolve()
        if not hidden_dir.is_dir():
            raise DataError(f"--hidden-data {hidden_data}: no such folder")
        for e in [*expose, notebooks_dir, *(p.resolve() for p in paths)]:
            if inside(e, hidden_dir) or inside(hidden_dir, e):
                raise ConfigError(f"--hidden-data {hidden_dir}: overlaps {e}, which the sandbox can read; "
                                  "keep the hidden labels in a folder of their own")
        hide.append(hidden_dir)
        model_rule = model_rule or ModelRule()
        model_rule.check()
    source_root = _grader_source_root()
    if source_root is not None:
        hide.append(source_root)
    if isolation == container_user.NAME:  # no mount hides anything: file modes must
        container_user.check_batch(paths, [notebooks_dir] + ([hidden_dir] if hidden_data is not None else []),
                                   sorted(sandbox.python_roots()))
    named = submission_names(paths)
    for name, _ in named:
        _reset(out_dir / name)
    write_helper(helper_dir)
    hidden = None
    if hidden_data is not None:
        hidden = HiddenSet.prepare(hidden_dir, model_rule.split, helper_dir)
        if model_rule.reference:
            hidden.reference_mm = reference_mpjpe(model_rule.reference, hidden)
        warning = threshold_warning(model_rule, hidden)
        if warning and progress:
            progress(f"warning: {warning}")
        pseudonyms(out_dir, [])  # the leaderboard's key, made once before the submissions run in threads
    limits = dataclasses.replace(limits or sandbox.Limits(), wall_seconds=float(timeout))
    batch = Batch(instructor, out_dir, helper_dir, limits, float(cell_timeout), parameters, hide, expose,
                   max_bytes, execute_notebooks, keep_work, model_rule=model_rule, hidden=hidden,
                   isolation=isolation)
    lock = threading.Lock()
    done = []

    def one(item):
        name, path = item
        result = grade_one(batch, name, path)
        with lock:
            done.append(result)
            if progress:
                progress(f"[{len(done)}/{len(named)}] {name}: {fmt(result.total)} / "
                         f"{fmt(result.max)} ({result.status}) in {result.seconds:.1f} s")
        return result

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        results = list(pool.map(one, named))
    except BaseException:  # Ctrl-C: stop the sandboxes now, not when their limits run out
        batch.cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    results.sort(key=lambda r: r.name)
    write_grades(out_dir, graded_results(out_dir, results), instructor)
    write_report(out_dir, graded_results(out_dir, results), instructor)
    return [r.to_dict() for r in results]


def graded_results(out_dir: Path, fresh: list[Result]) -> list[Result]:
    """Every submission graded into out_dir (a folder with the grader's MARKER and a result.json), the
    `fresh` results over older ones of the same name, sorted by name: the sheets of a regrade of some
    students keep everyone else's rows."""
    found = {}
    for folder in sorted(out_dir.iterdir()):
        path = folder / "result.json"
        if folder.is_symlink() or not (folder / MARKER).is_file() or not path.is_file():
            continue
        try:
            result = Result.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
        if result.name == folder.name:
            found[folder.name] = result
    found.update({r.name: r for r in fresh})
    return [found[name] for name in sorted(found)]


# ----------------------------------------------------------------------------- the command line


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
    from pose_course.datagen import make_config, make_data
    from pose_course.provision import has_dataset

    names = set(read_instructor(instructor).parameters)
    data_dir = Path(out_dir) / GRADING_DATA
    if "data_dir" in names and not has_dataset(data_dir):
        make_data(make_config(data_dir, preset="tiny", format="h5", workers=1), progress=False)
    defaults = {**GRADING_PARAMETERS, "data_dir": str(data_dir.resolve())}
    return {k: v for k, v in defaults.items() if k in names}


def main(args: argparse.Namespace) -> int:
    """`python -m pose_utils grade SUBMISSION... --out DIR [--jobs N] [--timeout S] [--cell-timeout S]
    [--instructor DIR] [-p NAME VALUE ...]`."""
    from pose_course.runner import parse_value

    parameters = {}
    for name, value in getattr(args, "parameter", None) or []:
        if not name.isidentifier():
            raise ConfigError(f"-p {name}: a parameter name must be a Python identifier")
        parameters[name] = parse_value(value)
    limits = sandbox.Limits()
    memory = getattr(args, "memory", None)  # GiB
    if memory is not None:
        limits = dataclasses.replace(limits, memory_bytes=int(memory * sandbox.GiB))
    processes = getattr(args, "processes", None)
    if processes is not None:
        limits = dataclasses.replace(limits, processes=int(processes))
    out_dir = Path(args.out)
    instructor = given_flag(args, "instructor", None) or _repository_root()
    install(out_dir, getattr(args, "roster", None), getattr(args, "policy", None))  # checked before grading
    parameters = {**grading_parameters(instructor, out_dir), **parameters}

    results = grade(args.submissions, out_dir, instructor, jobs=given_flag(args, "jobs", 1),
                    timeout=given_flag(args, "timeout", DEFAULT_TIMEOUT),
                    cell_timeout=given_flag(args, "cell_timeout", DEFAULT_CELL_TIMEOUT),
                    parameters=parameters, limits=limits,
                    execute_notebooks=not getattr(args, "checks_only", False),
                    progress=lambda line: print(line, flush=True),
                    hidden_data=getattr(args, "hidden_data", None),
                    model_rule=ModelRule.read(getattr(args, "model_rule", None)),
                    isolation=given_flag(args, "isolation", sandbox.BUBBLEWRAP))
    troubled = sum(1 for r in results if r["status"] != "ok")
    print(f"graded {len(results)} submissions ({troubled} with problems): {out_dir / 'grades.csv'}, "
          f"{out_dir / 'grades.md'}, feedback in {out_dir}/NAME/feedback.md")
    return 0
