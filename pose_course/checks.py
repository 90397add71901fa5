"""The assignment's checks as pytest sees them: unwritten exercises reported as one line each, and the
points of the notebooks' check cells (`make check`), each failed check explained.

A check is a notebook code cell tagged `check` whose outputs nbval compares with the stored ones
(`# NBVAL_CHECK_OUTPUT`), with nbgrader's metadata (pose_course.cells.nbgrader_metadata);
`hidden` ones stay in the instructor's notebooks (docs/assignment.md). The conftest files of `tests/`
and `notebooks/` call these hooks' bodies. A failed check says why in the summary: the exception and the
line of the student's code that raised it, or the first lines where its output differs from the stored
one (pose_course.check_outputs keeps what nbval compared); a cell that is not a check and fails is
named too. The exercises still to write are found in the source (`unwritten_exercises`), not only by the
first one a cell runs into.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from pose_course.cells import check_metadata
from pose_course.tracebacks import FRAME, student_frames
from pose_utils.errors import EXERCISE_PREFIX

EXERCISE_TEXT = re.compile(re.escape(EXERCISE_PREFIX) + r"write \w+ in [\w./-]+(?: \([^)]*explains it\))?")
# The stub the release writes: `raise NotImplementedError(` and the message on the next line.
_STUB = re.compile(r"^[ \t]*raise NotImplementedError\(\s*\"(" + re.escape(EXERCISE_PREFIX) + r"[^\"]*)\"",
                   re.MULTILINE)
DIFF_LINES = 6  # differing lines shown under a failed check


def exercise_in(text: str) -> str | None:
    """The first "Exercise: write F in FILE (...)" message in a failure's text, or None."""
    match = EXERCISE_TEXT.search(text or "")
    return match.group(0) if match else None


def unwritten_exercises(package: str | Path) -> list[str]:
    """Every stub still in the package's source: the messages of its `raise NotImplementedError("Exercise:
    ...")` lines, in file order."""
    found = []
    for path in sorted(Path(package).rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found += [m.group(1) for m in _STUB.finditer(text)]
    return found


def explain(item, root: Path | None = None) -> list[str]:
    """Why a notebook cell failed, in a few lines: `Type: message (at FILE:LINE, in F)` for an exception
    (the innermost frame in the student's files under `root`), else the first differing output lines."""
    outputs = getattr(item, "test_outputs", None) or []
    error = next((o for o in outputs if o.get("output_type") == "error"), None)
    if error is not None:
        where = ""
        frames = student_frames(error.get("traceback", []), root)[0] if root is not None else []
        files = [m for m in map(FRAME.match, frames) if m.group("path")]
        if files:  # the innermost frame in the student's files
            path, line, func = files[-1].group("path", "line", "func")
            where = f" (at {path[len(str(root)) + 1:]}:{line}, in {func.split('(')[0]})"
        message = " ".join(str(error.get("evalue", "")).split())
        return [f"{error.get('ename')}: {message[:300]}{where}"]
    compared = getattr(item, "compared_outputs", None)
    if compared is not None:
        from pose_course.check_outputs import as_text

        expected, got = as_text(compared[0]).splitlines(), as_text(compared[1]).splitlines()
        diff = [line for line in difflib.unified_diff(expected, got, lineterm="", n=0)
                if not line.startswith(("---", "+++", "@@"))]
        shown = [("expected: " if line.startswith("-") else "yours:    ") + line[1:] for line in diff]
        if not shown:  # the same text: the difference is in a number's tolerance or in the outputs' kinds
            return ["output differs from the reference:",
                    f"expected: {len(expected)} lines of output; yours: {len(got)} lines, the same text "
                    "(a number beyond the check's tolerance, or an output of another kind)"]
        more = len(shown) - DIFF_LINES
        return ["output differs from the reference:"] + shown[:DIFF_LINES] + (
            [f"({more} more differing lines)"] if more > 0 else [])
    return []


class Tally:
    """What a pytest session learnt about exercises and checks, for its terminal summary."""

    def __init__(self, package: str | Path | None = None):
        self.unwritten: dict[str, int] = {}  # exercise message -> tests it held back
        self.checks: list[dict] = []  # one per check cell: notebook, grade_id, points, earned, note, details
        self.failed_cells: list[list[str]] = []  # per failed cell that is not a check: its line, then why
        self._blocked: set[str] = set()  # notebooks in which a cell already met an unwritten exercise
        self.package = Path(package) if package is not None else None  # the student's package, scanned
        self.root = self.package.parent if self.package is not None else None

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
        """Note the result of a notebook cell (nbval item) once its call phase has run: a check's points
        and why it failed, or a failing cell that is not a check."""
        if report.when != "call" or not hasattr(item, "cell"):
            return
        meta = check_metadata(getattr(item, "cell", {}) or {})
        failure = str(report.longrepr) if report.failed else ""
        blocked = str(item.path) in self._blocked
        if meta is None:
            if report.failed and not exercise_in(failure) and not blocked:
                why = explain(item, self.root) or ["failed"]
                self.failed_cells.append([f"{item.path.name} {item.name}{_first_line(item)}: {why[0]}",
                                          *(f"       {d}" for d in why[1:])])
            return
        details = [] if not failure or exercise_in(failure) or blocked else explain(item, self.root)
        note = exercise_in(failure) or ("" if not failure else "after an unwritten exercise" if blocked
                                        else details[0] if details else "error")
        self.checks.append({"notebook": item.path.name, **meta, "earned": 0.0 if report.failed else
                            meta["points"], "note": note, "details": details[1:]})

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
                lines += [f"         {d}" for d in c.get("details", [])]
        if self.failed_cells:
            lines.append(f"cells that failed and are not checks ({len(self.failed_cells)}):")
            lines += [f"  {line}" for cell in self.failed_cells for line in cell]
        static = unwritten_exercises(self.package) if self.package is not None and self.package.is_dir() \
            else []
        messages = sorted(set(self.unwritten) | set(static))
        if messages:
            lines.append(f"exercises still to write ({len(messages)}; the tests they hold back are skipped):")
            lines += [f"  {m}" + (f"  [{self.unwritten[m]} test(s)]" if m in self.unwritten else "")
                      for m in messages]
        return lines


def _first_line(item) -> str:
    """` (first code line of the cell)`, so that a cell that is not a check can be found in the notebook."""
    source = getattr(getattr(item, "cell", None), "source", "") or ""
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines:
        return ""
    first = lines[0] if len(lines[0]) <= 60 else lines[0][:57] + "..."
    return f" (`{first}`)"
