"""The Canvas gradebook CSV: `python -m pose_utils gradebook canvas OUT --to FILE`, imported in Canvas with
Grades > Import.

Canvas's conventions: the columns Student, ID, SIS User ID, SIS Login ID, Section, then one column per
assignment headed "Name (assignment id)" (a header without the id creates a new assignment); a second row
"Points Possible" under the identity columns. Canvas matches a row by ID (its own user number, which the
roster does not know), else SIS User ID, else SIS Login ID: the roster's student_id and e-mail go there.
Only students on the roster are exported, with the final score (hand marks and late penalty included);
an unmarked written answer counts 0 and is named on the command's output.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pose_course.instructor.grading.answer_key import Instructor
from pose_course.instructor.grading.results import Result
from pose_course.instructor.grading.scoring import fmt
from pose_course.instructor.grading.standing import standings
from pose_utils.errors import ConfigError
from pose_utils.fileio import atomic_path

IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def canvas_csv(out_dir, results: list[Result], instructor: Instructor, assignment: str) -> tuple[str, list]:
    """(the CSV text, warnings: one line each) for the graded batch in OUT and its roster."""
    if not assignment.strip() or any(c in assignment for c in "\r\n"):
        raise ConfigError(f"--assignment {assignment!r}: give the Canvas assignment's name, e.g. "
                          "\"Programming Assignment 4 (4242)\" with its id from the assignment's URL")
    table, course = standings(out_dir, results, instructor)
    if not course.students:
        raise ConfigError(f"{Path(out_dir) / 'roster.csv'}: no roster; Canvas matches students by SIS id or "
                          "login, so give one (gradebook sheets OUT --roster FILE)")
    by_name = {st.result.name: st for st in table}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*IDENTITY, assignment.strip()])
    writer.writerow(["    Points Possible", "", "", "", "", fmt(table[0].max if table else 0)])
    warnings = list(course.unmatched(by_name))
    for s in course.students:
        st = by_name.get(s.submission)
        if st is None:  # no submission: 0, as Canvas's own "missing" policy would give
            writer.writerow([s.name, "", s.student_id, s.email, "", "0"])
            continue
        if st.to_mark:
            warnings.append(f"{s.submission}: {len(st.to_mark)} written answers not marked yet (count 0)")
        writer.writerow([s.name, "", s.student_id, s.email, "", fmt(st.final)])
    return buffer.getvalue(), warnings


def write_canvas(out_dir, results, instructor, assignment: str, to) -> list:
    text, warnings = canvas_csv(out_dir, results, instructor, assignment)
    with atomic_path(to) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return warnings
