"""The cell contract, in one place: what makes a notebook cell a check, a hidden check, a written answer,
the parameters cell, or a cell nbval compares.

- **parameters**: the cell tagged `parameters` (papermill's convention); papermill injects values after it.
- **checked by nbval**: a code cell with a whole-line comment `# NBVAL_CHECK_OUTPUT` (or the tag
  `nbval-check-output`); `pytest --nbval-lax` compares its outputs with the stored ones
  (pose_course.check_outputs: text exactly, numbers within a tolerance).
- **a check**: a checked cell tagged `check` too, with nbgrader's metadata (`nbgrader_metadata`: schema 3,
  grade, locked, not a solution, grade_id, points); it earns its points when its outputs match. Tagged
  `hidden` as well, it exists only in the instructor's notebooks, and its body sits between nbgrader's
  hidden-test markers, so that nbgrader's own `generate_assignment`, which knows no `hidden` tag, leaves
  it out too (the instructors' part of docs/assignment.md).
- **a written answer**: a markdown cell tagged `answer`, nbgrader's grade and solution, not locked,
  graded by a person.

Who reads it: stored_outputs.py (what a committed notebook keeps), checks.py (`make check`),
instructor/release.py (the student's copy), instructor/grading/answer_key.py (the grader's reading of the
instructor's notebooks, which enforces the contract). grading/plugin.py, which runs inside the sandbox
and cannot import pose_utils, spells out the two names it needs.
"""

from __future__ import annotations

CHECK_TAG, HIDDEN_TAG, ANSWER_TAG, PARAMETERS_TAG = "check", "hidden", "answer", "parameters"
CHECK_MARK = "NBVAL_CHECK_OUTPUT"
CHECK_MARK_TAG = "nbval-check-output"
# nbgrader 0.9 reads only schema 3 (older ones stop `nbgrader validate` with SchemaTooOldError), and a
# grade_id must match its pattern.
NBGRADER_SCHEMA = 3
GRADE_ID_PATTERN = r"[a-zA-Z0-9_\-]+"


def tags(cell) -> list:
    """The cell's tags (a list, whatever the metadata holds)."""
    found = cell.get("metadata", {}).get("tags", [])
    return found if isinstance(found, list) else []


def has_check_mark(source: str) -> bool:
    """Whether `source` has the line `# NBVAL_CHECK_OUTPUT` (a whole-line comment, as nbval reads it)."""
    lines = (line.strip() for line in source.splitlines())
    return any(line.startswith("#") and line.lstrip("#").strip() == CHECK_MARK for line in lines)


def is_checked(cell) -> bool:
    """True for a code cell nbval compares in lax mode: the `# NBVAL_CHECK_OUTPUT` line or its tag."""
    return cell.get("cell_type") == "code" and (has_check_mark(cell.get("source", ""))
                                                 or CHECK_MARK_TAG in tags(cell))


def is_parameters(cell) -> bool:
    return PARAMETERS_TAG in tags(cell)


def nbgrader_metadata(grade_id: str, points: float, answer: bool = False) -> dict:
    """`cell.metadata.nbgrader` of a check (an autograded test cell: locked, so nbgrader restores the
    instructor's source when it grades) or, with `answer`, of a written answer (nbgrader's manually
    graded answer: grade and solution, editable)."""
    return {"schema_version": NBGRADER_SCHEMA, "grade": True, "solution": answer, "locked": not answer,
            "grade_id": grade_id, "points": points}


def check_metadata(cell) -> dict | None:
    """{grade_id, points, hidden} of a check cell, None for any other cell."""
    grading = cell.get("metadata", {}).get("nbgrader", {})
    if CHECK_TAG not in tags(cell) or not grading.get("grade"):
        return None
    return {"grade_id": grading["grade_id"], "points": float(grading.get("points", 0)),
            "hidden": HIDDEN_TAG in tags(cell)}
