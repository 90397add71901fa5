"""Step 5 of grading (pose_course.instructor.grading.grade's docstring): what people read.

`feedback` writes one submission's feedback.md from its result; `write_grades` the batch's grades.csv
and grades.md, and with graded models leaderboard.md (ranks by MPJPE under pseudonyms).
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
import secrets
from pathlib import Path

from pose_course.instructor.grading.answer_key import Check, Instructor
from pose_course.instructor.grading.results import Answer, CheckScore, ModelScore, Result
from pose_course.instructor.grading.scoring import describe_failure, fmt
from pose_course.instructor.grading.similarity import grades_section
from pose_course.instructor.grading.standing import Standing, standings
from pose_course.tables import markdown_table
from pose_utils.errors import EXERCISE_PREFIX
from pose_utils.fileio import atomic_path
from pose_utils.skeleton import JOINT_NAMES

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


def feedback(result: Result, instructor: Instructor, standing: Standing | None = None) -> str:
    """feedback.md of one graded submission (see docs/assignment.md, "Grading"); with its standing, the
    hand marks of its written answers and the late policy too."""
    by_id = {c.grade_id: c for c in instructor.checks}
    answer_points = sum(a.points for a in instructor.answers)
    lines = [f"# Feedback: {result.name}", ""]
    if standing is not None and (standing.marks or standing.late):
        late = standing.late
        lines += [f"**{fmt(standing.final)} / {fmt(standing.max)} points**: automatic checks "
                  f"{fmt(result.total)} / {fmt(result.max)}" +
                  (f", written answers {fmt(standing.hand)} / {fmt(answer_points)}" if instructor.answers
                   else "") +
                  (f" ({len(standing.to_mark)} not marked yet)" if standing.to_mark else "") +
                  (f", late penalty -{late.penalty_percent:g} %" if late and late.penalty_percent
                   else "") + "."]
        if late:
            lines += ["", f"Submission time: {late.note}."]
        lines.append("")
    else:
        lines += [f"**Automatic checks: {fmt(result.total)} / {fmt(result.max)} points.**" +
                  (f" Written answers ({fmt(answer_points)} points) are graded by hand."
                   if instructor.answers else ""), ""]
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
        lines += [f"### {gid}: {fmt(e.earned)} / {fmt(e.points)} points ({e.notebook}, cell {e.cell})", ""]
        lines += failure_lines(e, by_id[gid])
    if result.model is not None:
        lines += _model_lines(result.model)
    if instructor.answers:
        lines += ["## Written answers (graded by hand)", ""]
        for a in instructor.answers:
            entry = result.answers.get(a.grade_id, Answer())
            lines += [f"### {a.grade_id} ({fmt(a.points)} points, {a.notebook})", ""]
            mark = standing.marks.get(a.grade_id) if standing is not None else None
            if mark is not None:
                lines += [f"**{fmt(mark.points)} / {fmt(a.points)} points**" +
                          (f": {mark.comment.strip()}" if mark.comment.strip() else "."), ""]
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


def failure_lines(e: CheckScore, check: Check) -> list[str]:
    """What feedback.md shows of a check that lost points: why, and for a public check its cell, the
    error or the outputs compared (Markdown lines; the Gradescope export shows the same)."""
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
        return [f"A hidden check (its cell and expected output are not shown): {why}.", ""]
    lines = [f"{why}.", "", "The cell:", "", _fence(check.source, "python"), ""]
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
    return lines


def _model_lines(m: ModelScore) -> list[str]:
    lines = ["## Your model on the hidden clips", ""]
    if m.problem:
        return lines + [f"**{fmt(m.earned)} / {fmt(m.points)} points**: {m.problem}.", ""]
    scale = (f"full points at or below {m.full_at_mm:.1f} mm, none at or above {m.zero_at_mm:.1f} mm, "
             f"linear between" if m.full_at_mm < m.zero_at_mm else
             f"full points below {m.zero_at_mm:.1f} mm, none at or above")
    lines += [f"**{fmt(m.earned)} / {fmt(m.points)} points**: MPJPE {m.mpjpe_mm:.1f} mm on clips no one "
              f"trained on ({scale}); P-MPJPE {m.p_mpjpe_mm:.1f} mm; {m.parameters:,} "
              f"parameters; loaded and predicted in {m.seconds:.1f} s."
              + (f" On the leaderboard you are {m.pseudonym}." if m.pseudonym else ""), ""]
    rows = [["", "MPJPE (mm)"], ["your model", f"{m.mpjpe_mm:.1f}"]]
    rows += [[name, f"{value:.1f}"] for name, value in m.baselines.items()]
    lines += [markdown_table(rows), ""]
    if m.per_joint_mm:
        base = m.baseline_per_joint_mm or [None] * len(m.per_joint_mm)
        rows = [["joint", "your model (mm)", "mean pose (mm)"]]
        rows += [[name, f"{v:.1f}", "" if b is None else f"{b:.1f}"]
                 for name, v, b in zip(JOINT_NAMES, m.per_joint_mm, base, strict=False)]
        lines += ["Per joint:", "", markdown_table(rows), ""]
    return lines


def _row(st: Standing, ids: list, models: bool, roster: bool, late: bool) -> list:
    """One submission's cells of grades.csv (and grades.md's table)."""
    result = st.result
    who = []
    if roster:
        s = st.student
        who = [s.student_id, s.name, s.email] if s else ["", "", ""]
    earned = [fmt(result.checks[g].earned) if g in result.checks else "0" for g in ids]
    model = []
    if models:
        m = result.model
        model = ["" if m is None or m.mpjpe_mm is None else f"{m.mpjpe_mm:.1f}", fmt(m.earned) if m else "0"]
    hand = [fmt(st.marks[g].points) if g in st.marks else "" for g in st.answer_points]
    policy = []
    if late:
        x = st.late
        policy = [x.submitted, str(x.days), f"{x.penalty_percent:g}", fmt(st.final)]
    return [result.name, *who, *earned, *model, *hand, fmt(st.points), *policy, result.status]


def pseudonyms(out_dir: Path, names) -> dict:
    """A stable pseudonym per submission name, from a secret kept in OUT/.grader (made on first use): the
    leaderboard can be published, and only the grader can tell who is who."""
    key_file = out_dir / ".grader" / "leaderboard-key"
    if not key_file.is_file():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(key_file) as tmp:
            tmp.write_text(secrets.token_hex(16))
            tmp.chmod(0o600)
    key = key_file.read_text().strip()
    return {n: "student-" + hashlib.sha256(f"{key}:{n}".encode()).hexdigest()[:8] for n in names}


def write_leaderboard(out_dir: Path, results: list[Result]) -> None:
    """OUT/leaderboard.md: the scored models by MPJPE on the hidden clips, under pseudonyms."""
    scored = sorted((r for r in results if r.model and r.model.mpjpe_mm is not None),
                    key=lambda r: (r.model.mpjpe_mm, r.name))
    names = pseudonyms(out_dir, [r.name for r in scored])
    rows = [["rank", "who", "MPJPE (mm)", "P-MPJPE (mm)", "parameters", "points"]]
    for rank, r in enumerate(scored, start=1):
        m = r.model
        rows.append([str(rank), names[r.name], f"{m.mpjpe_mm:.1f}", f"{m.p_mpjpe_mm:.1f}",
                     f"{m.parameters:,}", f"{fmt(m.earned)} / {fmt(m.points)}"])
    baseline = next((r.model.baselines for r in results if r.model), {})
    lines = ["# Leaderboard: the trained models on the hidden clips", "",
             f"{len(scored)} models scored"
             + "".join(f"; {k}: {v:.1f} mm" for k, v in baseline.items()) + ".",
             "", markdown_table(rows), ""]
    with atomic_path(out_dir / "leaderboard.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")


def write_grades(out_dir: Path, results: list[Result], instructor: Instructor) -> None:
    """OUT/grades.csv (a row a submission: the roster's columns when OUT has a roster, a column a check,
    the model, a column a written answer's hand mark, total, the late policy's columns when OUT has one,
    status), OUT/grades.md, and every NAME/feedback.md again with its hand marks and lateness."""
    table, course = standings(out_dir, results, instructor)
    ids = [c.grade_id for c in instructor.checks]
    answers = [a.grade_id for a in instructor.answers]
    models = any(r.model is not None for r in results)
    roster, late = bool(course.students), course.policy is not None
    header = ["student", *(["student_id", "name", "email"] if roster else []), *ids,
              *(["model_mpjpe_mm", "model"] if models else []), *answers, "total",
              *(["submitted", "late_days", "penalty_percent", "final"] if late else []), "status"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for st in table:
        writer.writerow(_row(st, ids, models, roster, late))
    with atomic_path(out_dir / "grades.csv") as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    answer_points = sum(a.points for a in instructor.answers)
    model_max = max((r.model.points for r in results if r.model), default=0)
    rows = [["student", *(["student_id", "name", "email"] if roster else []),
             *(f"{c.grade_id} ({fmt(c.points)})" for c in instructor.checks),
             *(["model MPJPE (mm)", f"model ({fmt(model_max)})"] if models else []),
             *(f"{a.grade_id} ({fmt(a.points)})" for a in instructor.answers),
             f"total ({fmt(instructor.max_points + model_max + answer_points)})",
             *(["submitted", "days late", "penalty (%)", "final"] if late else []), "status"]]
    rows += [_row(st, ids, models, roster, late) for st in table]
    unmarked = sum(len(st.to_mark) for st in table)
    lines = ["# Grades", "",
             f"{len(results)} submissions; automatic checks worth {fmt(instructor.max_points)} points" +
             (f", written answers worth {fmt(answer_points)} more, marked by hand (`python -m pose_utils "
              f"gradebook serve {out_dir.name}`): {unmarked} answers still to mark"
              if instructor.answers else "") + ".", "", markdown_table(rows), ""]
    unmatched = course.unmatched(r.name for r in results)
    if unmatched:
        lines += ["## Roster", ""] + [f"- {line}" for line in unmatched] + [""]
    if late:
        notes = [f"- {st.result.name}: {st.late.note}" for st in table
                 if st.late.penalty_percent or not st.late.submitted or "by the instructor" in st.late.note]
        if notes:
            lines += ["## Late policy", ""] + notes + [""]
    lines += grades_section(out_dir, results, instructor)
    troubled = [r for r in results if r.problems]
    if troubled:
        lines += ["## Problems", ""]
        lines += [f"- {r.name}: {p.line}" for r in troubled for p in r.problems]
        lines.append("")
    with atomic_path(out_dir / "grades.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    if models:
        write_leaderboard(out_dir, results)
    for st in table:  # feedback.md gains the marks and the policy; the grader's folders only
        path = out_dir / st.result.name / "feedback.md"
        if path.is_file() and not path.is_symlink():
            with atomic_path(path) as tmp:
                tmp.write_text(feedback(st.result, instructor, st), encoding="utf-8")
