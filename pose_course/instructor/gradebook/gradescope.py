"""Gradescope's results.json from our grading results: `python -m pose_utils gradescope export OUT --to DIR`.

`results_json` turns one graded submission (OUT/NAME/result.json) into Gradescope's format (its
specification: gradescope/autograder_samples docs/specs.md; the JSON schema beside this file is written
from it). One test per check; a public check's failure shows what feedback.md shows; a hidden check shows
its score only, and only once the instructor publishes the grades ("after_published"): shown earlier, its
pass or fail would tell a student what the hidden check tests while they can still change their code, and
"hidden" would keep it from them for good, which Gradescope reserves for tests worth no points. Written
answers marked in our gradebook page (OUT/marks.json) are tests with their comment; unmarked ones are left
to Gradescope's own manual grading. The trained model, when graded, is one
test plus leaderboard entries (MPJPE ascending). The autograder bundle is gradebook/autograder.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pose_course.instructor.grading.answer_key import Instructor, read_instructor
from pose_course.instructor.grading.feedback import failure_lines
from pose_course.instructor.grading.grade import _repository_root, graded_results
from pose_course.instructor.grading.marks import read_marks
from pose_course.instructor.grading.results import CheckScore, ModelScore, Result
from pose_course.instructor.grading.scoring import fmt
from pose_utils.errors import ConfigError, DataError
from pose_utils.fileio import write_json

SCHEMA = Path(__file__).with_name("gradescope_results.schema.json")
RESULTS = "results.json"
HIDDEN_VISIBILITY = "after_published"
MAX_OUTPUT = 30_000  # characters of one test's output; Gradescope shows it collapsed


def _cut(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + "\n\n[... cut]"


def _check_test(gid: str, e: CheckScore, instructor: Instructor) -> dict:
    check = next((c for c in instructor.checks if c.grade_id == gid), None)
    passed = e.outcome == "passed" and e.earned >= e.points
    if e.hidden or (check is not None and check.hidden):
        # the outcome word only: never the cell, its expected output or what nbval said of them
        output = f"A hidden check: {'passed' if passed else 'failed'} (its cell and output are not shown)."
    elif passed:
        output = "Passed."
    elif check is None:
        raise DataError(f"check {gid!r} of the result is not in the instructor's notebooks (graded with "
                        "another version of them?); export with the --instructor it was graded with")
    else:
        output = "\n".join(failure_lines(e, check)).strip()
    hidden = e.hidden or (check is not None and check.hidden)
    return {"name": f"{gid} ({e.notebook})", "score": e.earned, "max_score": e.points,
            "status": "passed" if passed else "failed", "output": _cut(output), "output_format": "md",
            "tags": [e.notebook, "hidden" if hidden else "public"],
            "visibility": HIDDEN_VISIBILITY if hidden else "visible",
            "extra_data": {"grade_id": gid, "cell": e.cell, "outcome": e.outcome}}


def _model_test(m: ModelScore) -> dict:
    if m.problem or m.mpjpe_mm is None:
        output = f"Your model earned nothing: {m.problem or 'no score'}."
    else:
        output = (f"MPJPE {m.mpjpe_mm:.1f} mm on clips no one trained on (full points at or below "
                  f"{m.full_at_mm:.1f} mm, none at or above {m.zero_at_mm:.1f} mm, linear between); "
                  f"P-MPJPE {m.p_mpjpe_mm:.1f} mm; {m.parameters:,} parameters.")
        output += "".join(f"\n- {name}: {value:.1f} mm" for name, value in m.baselines.items())
    return {"name": "trained model on the hidden clips (MPJPE)", "score": m.earned, "max_score": m.points,
            "status": "passed" if m.earned > 0 else "failed", "output": output, "output_format": "md",
            "tags": ["model"], "visibility": "visible"}


def _answer_test(answer, mark) -> dict:
    return {"name": f"{answer.grade_id} (written answer, {answer.notebook})", "score": mark.points,
            "max_score": answer.points, "status": "passed" if mark.points >= answer.points else "failed",
            "output": mark.comment.strip() or "Marked by hand.", "output_format": "md",
            "tags": [answer.notebook, "written"], "visibility": "visible"}


def results_json(result: Result, instructor: Instructor, marks: dict | None = None) -> dict:
    """Gradescope's results.json (a dict) for one graded submission; `marks` ({grade_id: Mark}, from
    OUT/marks.json) makes each answer marked in the gradebook page a test of its own."""
    marks = marks or {}
    marked = [a for a in instructor.answers if a.grade_id in marks]
    unmarked = [a for a in instructor.answers if a.grade_id not in marks]
    lines = [f"**Automatic checks: {fmt(result.total)} / {fmt(result.max)} points** "
             f"(status: {result.status})."]
    if marked:
        got = sum(marks[a.grade_id].points for a in marked)
        lines.append(f"Written answers marked by hand: {fmt(got)} / {fmt(sum(a.points for a in marked))} "
                     "points.")
    if unmarked:
        lines.append(f"Written answers ({fmt(sum(a.points for a in unmarked))} points) are graded by hand "
                     "in Gradescope.")
    if any(e.hidden for e in result.checks.values()):
        lines.append("Hidden checks show their points once the grades are published.")
    if result.problems:
        lines += ["", *(f"- {p.line}" for p in result.problems)]
    tests = [_check_test(gid, e, instructor) for gid, e in result.checks.items()]
    tests += [_answer_test(a, marks[a.grade_id]) for a in marked]
    score = result.total + sum(marks[a.grade_id].points for a in marked)
    out = {"score": score, "execution_time": round(result.seconds, 1), "output": "\n".join(lines),
           "output_format": "md", "stdout_visibility": "hidden", "tests": tests}
    m = result.model
    if m is not None:
        tests.append(_model_test(m))
        if m.mpjpe_mm is not None:
            out["leaderboard"] = [{"name": "MPJPE (mm)", "value": round(m.mpjpe_mm, 2), "order": "asc"},
                                  {"name": "P-MPJPE (mm)", "value": round(m.p_mpjpe_mm, 2), "order": "asc"},
                                  {"name": "parameters", "value": m.parameters, "order": "asc"}]
    return out


def read_result(path: Path) -> Result:
    """OUT/NAME/result.json, or DataError naming the file."""
    try:
        return Result.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable grading result ({e})") from None


def export(out_dir, to_dir, instructor_root) -> list[Path]:
    """to_dir/NAME/results.json for every submission graded into out_dir; returns the files written."""
    out_dir, to_dir = Path(out_dir), Path(to_dir)
    if not out_dir.is_dir():
        raise DataError(f"{out_dir}: no such folder (the --out of a grade run)")
    results = graded_results(out_dir, [])
    if not results:
        raise DataError(f"{out_dir}: no graded submission in it (folders NAME/ with result.json)")
    instructor = read_instructor(instructor_root)
    marks = read_marks(out_dir)
    written = []
    for r in results:
        path = to_dir / r.name / RESULTS
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, results_json(r, instructor, marks.get(r.name)))
        written.append(path)
    return written


def main(args: argparse.Namespace) -> int:
    """`python -m pose_utils gradescope export OUT --to DIR` | `gradescope bundle --out ZIP`."""
    instructor = getattr(args, "instructor", None) or _repository_root()
    if args.action == "export":
        written = export(args.out, args.to, instructor)
        print(f"wrote {len(written)} results.json files under {args.to}")
        return 0
    if args.action == "bundle":
        from pose_course.instructor.gradebook.autograder import bundle

        zip_path = bundle(args.out, instructor, timeout=args.timeout, cell_timeout=args.cell_timeout,
                          checks_only=args.checks_only)
        print(f"wrote {zip_path}: upload it as the assignment's autograder (docs/assignment.md, "
              "\"Gradescope\")")
        return 0
    raise ConfigError(f"gradescope: unknown action {args.action!r}")
