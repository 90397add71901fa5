"""The assignment's checks as pytest sees them: unwritten exercises reported as one line each, and the
points of the notebooks' check cells (`make check`).

A check is a notebook code cell tagged `check` whose outputs nbval compares with the stored ones
(`# NBVAL_CHECK_OUTPUT`), with nbgrader's metadata `{"grade": true, "grade_id": ..., "points": ...}`;
`hidden` ones stay in the instructor's notebooks (docs/assignment.md). The conftest files of `tests/`
and `notebooks/` call these hooks' bodies.
"""

from __future__ import annotations

import re

from ..errors import EXERCISE_PREFIX

EXERCISE_TEXT = re.compile(re.escape(EXERCISE_PREFIX) + r"write \w+ in [\w./-]+(?: \([^)]*explains it\))?")


def exercise_in(text: str) -> str | None:
    """The first "Exercise: write F in FILE (...)" message in a failure's text, or None."""
    match = EXERCISE_TEXT.search(text or "")
    return match.group(0) if match else None


def check_metadata(cell) -> dict | None:
    """{grade_id, points, hidden} of a check cell, None for any other cell."""
    metadata = cell.get("metadata", {})
    tags = metadata.get("tags", [])
    grading = metadata.get("nbgrader", {})
    if "check" not in tags or not grading.get("grade"):
        return None
    return {"grade_id": grading["grade_id"], "points": float(grading.get("points", 0)),
            "hidden": "hidden" in tags}


class Tally:
    """What a pytest session learnt about exercises and checks, for its terminal summary."""

    def __init__(self):
        self.unwritten: dict[str, int] = {}  # exercise message -> tests it held back
        self.checks: list[dict] = []  # one per check cell: notebook, grade_id, points, earned, note
        self._blocked: set[str] = set()  # notebooks in which a cell already met an unwritten exercise

    def skip_if_unwritten(self, item, report) -> None:
        """Turn a failure caused by an unwritten exercise into a skip that names it (student version)."""
        if not report.failed:
            return
        message = exercise_in(str(report.longrepr))
        if message:
            self.unwritten[message] = self.unwritten.get(message, 0) + 1
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"to write: {message}")
            if hasattr(item, "cell"):
                self._blocked.add(str(item.path))
        elif hasattr(item, "cell") and str(item.path) in self._blocked:
            # A later cell of the notebook needs what the unwritten cell would have made (NameError...).
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0,
                               "after an unwritten exercise earlier in this notebook")

    def record_check(self, item, report) -> None:
        """Note the result of a notebook check cell (nbval item) once its call phase has run."""
        meta = check_metadata(getattr(item, "cell", {}) or {})
        if meta is None or report.when != "call":
            return
        failure = str(report.longrepr) if report.failed else ""
        note = exercise_in(failure) or ("" if not failure else "output differs from the reference"
                                        if "differ" in failure else "after an unwritten exercise"
                                        if str(item.path) in self._blocked else "error")
        self.checks.append({"notebook": item.path.name, **meta, "earned": 0.0 if report.failed else
                            meta["points"], "note": note})

    @property
    def all_checks_passed(self) -> bool:
        return all(c["earned"] == c["points"] for c in self.checks)

    def summary_lines(self) -> list[str]:
        lines = []
        if self.checks:
            earned = sum(c["earned"] for c in self.checks)
            total = sum(c["points"] for c in self.checks)
            passed = sum(1 for c in self.checks if c["earned"] == c["points"])
            lines.append(f"checks: {passed} of {len(self.checks)} passed, {earned:g} of {total:g} points")
            for c in self.checks:
                mark = "ok  " if c["earned"] == c["points"] else "FAIL"
                score = f"{c['earned']:g}/{c['points']:g}"
                lines.append(f"  {mark} {c['notebook']:22s} {c['grade_id']:20s} {score:>5s}"
                             + (f"  {c['note']}" if c["note"] else ""))
        if self.unwritten:
            lines.append(f"exercises still to write ({len(self.unwritten)}; the tests they hold back are "
                         "skipped):")
            lines += [f"  {message}  [{count} test(s)]" for message, count in sorted(self.unwritten.items())]
        return lines
