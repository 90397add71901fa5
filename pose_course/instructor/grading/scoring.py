"""Step 3 of grading a submission (pose_course.instructor.grading.grade's docstring): its runs read back.

What the checks' run sent through its channel becomes points per check, the outputs and errors the
feedback shows, and the problems the run shows (`score`); the JUnit report pytest left in the sandbox
only has to agree with it. The written answers are read from the student's own notebooks
(`student_answers`).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from pose_course.check_outputs import as_text
from pose_course.instructor.grading.answer_key import Instructor
from pose_course.instructor.grading.results import Answer, CheckScore, ChecksRun, Problem
from pose_course.instructor.grading.runs import Batch
from pose_course.tracebacks import describe_error, scrub

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


def fmt(x: float) -> str:
    """Points and seconds as the sheets and feedback show them: 2, 0.5, 900."""
    return f"{x:g}"


def _size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def _checks_named(ids: list[str]) -> str:
    return ("check " if len(ids) == 1 else "checks ") + ", ".join(repr(i) for i in ids)


def score(batch: Batch, run: ChecksRun) -> tuple[dict[str, CheckScore], list[Problem]]:
    """Points per check from what the run sent through its channel (`ChecksRun.results`), and the
    problems the run shows. A JUnit report that disagrees with those results, or was
    rewritten after pytest wrote it, makes every check score 0 ("tampered")."""
    cases = junit_cases(run.report)
    repo, others = run.box / "repo", batch.grader_paths
    checks, disagree = {}, False
    for c in batch.instructor.checks:
        nodeid = f"repo/notebooks/{c.notebook}::Cell {c.code_cell}"
        told = run.results.get(nodeid)
        outcome = str(told["outcome"]) if told else "missing"
        if run.finish is not None and run.report is not None:
            case = cases.get(junit_key(nodeid))
            disagree |= (case["outcome"] if case else "missing") != outcome
        entry = CheckScore(points=c.points, earned=0.0, outcome=outcome, notebook=c.notebook,
                           cell=c.cell + 1, hidden=c.hidden,
                           text=scrub(_ANSI.sub("", str(told.get("text", ""))), repo, others) if told else "",
                           seconds=told.get("seconds") if told else None,
                           cut=int(told.get("cut", 0) or 0) if told else 0)
        if told and outcome != "passed" and not c.hidden:
            if isinstance(told.get("error"), dict):
                entry.error = describe_error(told["error"], repo, others)
            elif isinstance(told.get("expected"), dict) and isinstance(told.get("got"), dict):
                entry.expected = as_text(told["expected"])
                entry.got = scrub(as_text(told["got"]), repo, others)
        checks[c.grade_id] = entry
    tampered = run.tampered or disagree
    if not tampered:
        for entry in checks.values():
            if entry.outcome == "passed":
                entry.earned = entry.points
    problems = []
    res, limits = run.run, batch.limits
    failed = {gid: e for gid, e in checks.items() if e.outcome != "passed"}
    hung = [g for g, e in failed.items() if "Timeout of" in e.text]
    if res.timed_out:
        problems.append(Problem("hung", f"hung: the checks did not finish within the submission's "
                                        f"{fmt(limits.wall_seconds)} s and were stopped; every check without "
                                        "a result scores 0"))
    elif hung:
        problems.append(Problem("hung", f"hung: {_checks_named(hung)} ran past the "
                                        f"{fmt(batch.cell_timeout)} s limit per cell (nbval then gives up on "
                                        "the cells after it)"))
    died = [g for g, e in failed.items() if re.search(r"Kernel (dead|died)|DeadKernel", e.text)]
    if not res.timed_out and (res.returncode not in (0, 1) or run.finish is None or died):
        if died:
            how = (f"the notebook's kernel died during {_checks_named(died[:1])} (killed, or the code "
                   "exited); the checks after it score 0")
        elif run.finish is not None:
            how = f"pytest stopped with exit status {res.returncode} (see logs/checks.stdout.log)"
        else:
            how = (f"pytest stopped before the end of the checks (exit status {res.returncode}; see "
                   "logs/checks.stderr.log); every check without a result scores 0")
        problems.append(Problem("crashed", f"crashed: {how}"))
    oom = [g for g, e in failed.items() if re.search(r"MemoryError|bad_alloc", e.text)]
    if oom or res.memory_exceeded:
        where = _checks_named(oom) if oom else "the checks"
        problems.append(Problem("out_of_memory", f"ran out of memory: {where} went past the limit of "
                                                 f"{_size(limits.memory_bytes)} per process"))
    cut = [g for g, e in checks.items() if e.cut]
    if cut or res.output_truncated or run.overflow:
        where = _checks_named(cut) if cut else "the checks"
        problems.append(Problem("printed_too_much", f"printed too much: {where} wrote more than "
                         f"{_size(limits.output_bytes)} to stdout or stderr, or a failure longer than the "
                         "report keeps; the rest was dropped"))
    if tampered:
        problems.append(Problem("tampered", "tampered: the test report in the sandbox was rewritten or does "
                                            "not match what pytest told the grader; every check scores 0"))
    return checks, problems


def student_answers(repo: Path | None, instructor: Instructor) -> dict[str, Answer]:
    """{grade_id: Answer}: each written answer's text from the student's own notebook."""
    import nbformat

    found = {}
    for a in instructor.answers:
        path = repo / "notebooks" / a.notebook if repo else None
        entry = Answer()
        if path is None or not path.is_file():
            entry.note = f"notebooks/{a.notebook} is missing from the submission"
        else:
            try:
                nb = nbformat.reads(path.read_text("utf-8", "replace"), as_version=4)
                cells = [c for c in nb.cells
                         if (c.get("metadata", {}).get("nbgrader") or {}).get("grade_id") == a.grade_id]
            except Exception as e:
                cells, entry.note = [], f"notebooks/{a.notebook} is not a readable notebook ({e})"
            if cells:
                entry.text = str(cells[0].source)
                if entry.text.strip() == a.template.strip():
                    entry.note = "not answered: the cell still holds the template text"
            elif entry.note is None:
                entry.note = f"no cell with grade_id {a.grade_id!r} in notebooks/{a.notebook}"
        found[a.grade_id] = entry
    return found
