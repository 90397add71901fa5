"""Step 5 of grading (pose_course.instructor.grading.grade's docstring): what people read.

`feedback` writes one submission's feedback.md from its result; `write_grades` the batch's grades.csv
and grades.md.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from pathlib import Path

from pose_course.instructor.grading.answer_key import Instructor
from pose_course.instructor.grading.results import Answer, Result
from pose_course.instructor.grading.scoring import describe_failure, fmt
from pose_course.tables import markdown_table
from pose_utils.errors import EXERCISE_PREFIX
from pose_utils.fileio import atomic_path

MAX_SHOWN = 4000  # characters of a failure shown in feedback.md


def _fence(text: str, lang: str = "") -> str:
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _cut(text: str, limit: int = MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[... {len(text) - limit} more characters]"


def output_diff(expected: str, got: str) -> str:
    """A unified diff of a check's whole expected output and the student's, line by line."""
    lines = difflib.unified_diff(expected.splitlines(), got.splitlines(), "expected", "your output",
                                 lineterm="", n=3)
    return "\n".join(lines)


def feedback(result: Result, instructor: Instructor) -> str:
    """feedback.md of one graded submission (see docs/assignment.md, "Grading")."""
    by_id = {c.grade_id: c for c in instructor.checks}
    answer_points = sum(a.points for a in instructor.answers)
    lines = [f"# Feedback: {result.name}", "",
             f"**Automatic checks: {fmt(result.total)} / {fmt(result.max)} points.**" +
             (f" Written answers ({fmt(answer_points)} points) are graded by hand."
              if instructor.answers else ""),
             ""]
    lines += [f"- {p.line}" for p in result.problems]
    if result.problems:
        lines.append("")
    if result.checks:
        rows = [["check", "notebook", "cell", "points", "result"]]
        for gid, e in result.checks.items():
            rows.append([gid + (" (hidden)" if e.hidden else ""), e.notebook, str(e.cell),
                         f"{fmt(e.earned)} / {fmt(e.points)}", e.outcome])
        lines += ["## Checks", "", markdown_table(rows), ""]
    failed = [(gid, e) for gid, e in result.checks.items() if e.earned < e.points]
    if failed:
        lines += ["## Failed checks", ""]
    for gid, e in failed:
        check = by_id[gid]
        lines += [f"### {gid}: {fmt(e.earned)} / {fmt(e.points)} points ({e.notebook}, cell {e.cell})", ""]
        why, came = describe_failure(e.text) if e.text else ("no result", "")
        if e.outcome == "skipped" and "timed out" in e.text:
            why, came = "not run to a result: an earlier cell timed out", ""
        elif e.outcome == "missing":
            why = "no result: the run stopped before this cell (see the lines above)"
        elif e.outcome == "passed":
            why = "passed, but the report could not be trusted"
        unwritten = re.search(rf"NotImplementedError: ({re.escape(EXERCISE_PREFIX)}.*)", e.text)
        if unwritten:  # the student version's placeholder, still there
            why, came = f"not written yet ({unwritten.group(1).strip().rstrip('.')})", ""
        if check.hidden:
            lines += [f"A hidden check (its cell and expected output are not shown): {why}.", ""]
            continue
        lines += [f"{why}.", "", "The cell:", "", _fence(check.source, "python"), ""]
        if e.error and not unwritten:
            lines += ["Your code raised:", "", _fence(_cut(e.error)), ""]
        elif e.got is not None:
            lines += ["Expected:", "", _fence(check.expected or "(no output)"), "",
                      "Your output:", "", _fence(_cut(e.got or "(no output)")), ""]
            diff = output_diff(e.expected if e.expected is not None else check.expected or "", e.got)
            if diff:
                lines += ["The difference (- expected, + yours; numbers match within the check's "
                          "tolerance):", "", _fence(_cut(diff), "diff"), ""]
        else:
            lines += ["Expected:", "", _fence(check.expected or "(no output)"), ""]
            if came:
                lines += ["What came:", "", _fence(_cut(came)), ""]
    if instructor.answers:
        lines += ["## Written answers (graded by hand)", ""]
        for a in instructor.answers:
            entry = result.answers.get(a.grade_id, Answer())
            lines += [f"### {a.grade_id} ({fmt(a.points)} points, {a.notebook})", ""]
            if entry.note:
                lines += [f"*{entry.note}*", ""]
            if entry.text:
                lines += ["\n".join("> " + line for line in _cut(entry.text).splitlines()), ""]
    if result.notebooks:
        lines += ["## Your notebooks as submitted", ""]
        for nb in result.notebooks:
            state = "ran to the end" if nb.ok else nb.error
            where = (f"; executed copy: executed/{nb.name}" if nb.path else "")
            lines.append(f"- {nb.name}: {state}{where}")
        lines.append("")
    return "\n".join(lines)


def _row(result: Result, ids: list) -> list:
    earned = [fmt(result.checks[g].earned) if g in result.checks else "0" for g in ids]
    return [result.name, *earned, fmt(result.total), result.status]


def write_grades(out_dir: Path, results: list[Result], instructor: Instructor) -> None:
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
    rows = [["student", *(f"{c.grade_id} ({fmt(c.points)})" for c in instructor.checks),
             f"total ({fmt(instructor.max_points)})", "status"]]
    rows += [_row(r, ids) for r in results]
    lines = ["# Grades", "",
             f"{len(results)} submissions; automatic checks worth {fmt(instructor.max_points)} points" +
             (f", written answers worth {fmt(answer_points)} more, graded by hand from each NAME/feedback.md"
              if instructor.answers else "") + ".", "", markdown_table(rows), ""]
    troubled = [r for r in results if r.problems]
    if troubled:
        lines += ["## Problems", ""]
        lines += [f"- {r.name}: {p.line}" for r in troubled for p in r.problems]
        lines.append("")
    with atomic_path(out_dir / "grades.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
