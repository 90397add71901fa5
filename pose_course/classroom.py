"""GitHub Classroom's autograding of the public checks: the record `make check` leaves, the command that
scores one check from it, and the workflow with one autograding step per public check.

GitHub Classroom scores one step per test by a command's exit status (autograding-command-grader: exit 0
earns the step's max-score); running nbval once per check would execute the notebooks 15 times. So
`make check` executes them once and writes RECORD ({grade_id: {points, earned, outcome, notebook,
note}}), and each step runs `python -m pose_course.classroom passed GRADE_ID`, which reads it.

The workflow (WORKFLOW) is generated from the notebooks' public checks, never typed: after adding or
changing a check, `python -m pose_course.classroom write-workflow`; tests/test_classroom.py fails until
the committed file equals the generated one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from pose_course.cells import GRADE_ID_PATTERN, check_metadata
from pose_utils.errors import ConfigError, DataError, PoseUtilsError

RECORD = "outputs/check/results.json"  # relative to the repository root; the Makefile's CHECK_RECORD
WORKFLOW = ".github/workflows/classroom.yml"
PYTHON = ".venv/bin/python"  # the environment `make` installs; the grader's steps run in the checkout
GRADE_ID = re.compile(rf"^{GRADE_ID_PATTERN}$")  # nbgrader's rule, so an id is safe in YAML and in a shell


def record_of(checks: list[dict]) -> dict:
    """The record of a `make check` run from pose_course.checks.Tally.checks: {grade_id: {points, earned,
    outcome ("passed" or "failed"), notebook, note (why it failed)}}."""
    return {c["grade_id"]: {"points": c["points"], "earned": c["earned"],
                            "outcome": "passed" if c["earned"] == c["points"] else "failed",
                            "notebook": c["notebook"], "note": c.get("note", "")} for c in checks}


def write_record(path: str | Path, checks: list[dict]) -> None:
    from pose_utils.fileio import write_json

    write_json(path, record_of(checks), fsync=False)


def passed(grade_id: str, record: str | Path = RECORD) -> tuple[bool, str]:
    """Whether check `grade_id` passed in the record of the last `make check`, and one line saying so."""
    path = Path(record)
    if not path.is_file():
        return False, f"{grade_id}: no record of the checks at {path}: run `make check` first"
    try:
        entry = json.loads(path.read_text(encoding="utf-8")).get(grade_id)
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        return False, f"{grade_id}: {path} is not a record of the checks ({e}): run `make check` again"
    if not isinstance(entry, dict):
        return False, (f"{grade_id}: not in {path}: the last `make check` did not run this check "
                       "(`make check` without NB= runs them all)")
    score = f"{entry.get('earned', 0):g} of {entry.get('points', 0):g} points"
    if entry.get("outcome") == "passed":
        return True, f"{grade_id}: passed, {score} ({entry.get('notebook', '')})"
    why = f": {entry['note']}" if entry.get("note") else ""
    return False, f"{grade_id}: failed, {score} ({entry.get('notebook', '')}){why}"


def public_checks(notebooks: str | Path) -> list[dict]:
    """{grade_id, points, notebook} of each public check of notebooks/NN_*.ipynb, in notebook order.

    The command grader reads max-score as an integer, so points must be whole numbers; ids must be
    nbgrader's (letters, digits, _ and -) and distinct once upper-cased (the reporter's variable names).
    """
    found, seen = [], {}
    for path in sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a readable notebook ({e})") from None
        for cell in cells:
            meta = check_metadata(cell)
            if meta is None or meta["hidden"]:
                continue
            gid, points = str(meta["grade_id"]), meta["points"]
            if not GRADE_ID.match(gid):
                raise ConfigError(f"{path.name}: check grade_id {gid!r} has characters other than letters, "
                                  "digits, _ and -")
            if points != int(points) or points < 0:
                raise ConfigError(f"{path.name}: check {gid} has points {points:g}; GitHub Classroom's "
                                  "autograding takes whole, non-negative points")
            if gid.upper() in seen:
                raise ConfigError(f"{path.name}: check {gid} has the id of check {seen[gid.upper()]} "
                                  "(ids are compared upper-cased)")
            seen[gid.upper()] = gid
            found.append({"grade_id": gid, "points": int(points), "notebook": path.name})
    return found


def step_id(grade_id: str) -> str:
    """The workflow step id of a check: the grade_id, after a letter when it starts with a digit or `-`."""
    return grade_id if re.match(r"[A-Za-z_]", grade_id) else f"check_{grade_id}"


HEAD = """\
# GitHub Classroom's autograding of the assignment's public checks, on every push (docs/assignment.md).
# Generated from the notebooks' check cells by `python -m pose_course.classroom write-workflow`: do not
# edit by hand; tests/test_classroom.py compares this file with the generated one.
# `make check` executes the notebooks once and records each check in {record};
# each step after it scores one check from that record (exit 0 earns its points) and the reporter sends
# the total to GitHub Classroom. The names are those of the workflow Classroom itself writes, which a test
# added in Classroom's settings would write over this file.
name: Autograding Tests
"on":
  push:
  workflow_dispatch:
  repository_dispatch:
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    timeout-minutes: 90
    steps:
      - name: Checkout
        uses: actions/checkout@v4
      - name: Python 3.11
        uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
          cache-dependency-path: pyproject.toml
      - name: Install the project into .venv
        run: make .venv/.installed-stamp
      # The notebooks render their own small dataset (preset tiny) into outputs/, offline: no data step.
      # A failed check fails make check; the steps below still run and score each check.
      - name: make check
        run: make check
        continue-on-error: true
"""

STEP = """\
      - name: "{gid} ({points} points, {notebook})"
        id: {sid}
        uses: classroom-resources/autograding-command-grader@v1
        with:
          test-name: {gid}
          setup-command: ""
          command: {python} -m pose_course.classroom passed {gid}
          timeout: 1
          max-score: {points}
"""


def workflow(notebooks: str | Path) -> str:
    """The text of WORKFLOW for the public checks of `notebooks`."""
    checks = public_checks(notebooks)
    if not checks:
        raise ConfigError(f"{notebooks}: no public check cell (tag `check`, nbgrader grade_id and points)")
    steps = "".join(STEP.format(gid=c["grade_id"], sid=step_id(c["grade_id"]), points=c["points"],
                                notebook=c["notebook"], python=PYTHON) for c in checks)
    env = "".join(f'          {step_id(c["grade_id"]).upper()}_RESULTS: '
                  f'"${{{{steps.{step_id(c["grade_id"])}.outputs.result}}}}"\n' for c in checks)
    runners = ",".join(step_id(c["grade_id"]) for c in checks)
    return (HEAD.format(record=RECORD) + steps + "      - name: Autograding reporter\n"
            "        uses: classroom-resources/autograding-grading-reporter@v1\n"
            f"        env:\n{env}        with:\n          runners: {runners}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_course.classroom",
                                     description="GitHub Classroom's autograding of the public checks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("passed", help="exit 0 if the check passed in the last make check's record, else 1")
    p.add_argument("grade_id")
    p.add_argument("--record", default=RECORD, help=f"the record (default {RECORD})")
    p = sub.add_parser("write-workflow", help=f"write {WORKFLOW} from the notebooks' public checks")
    p.add_argument("--root", default=".", help="the repository (default: the current folder)")
    args = parser.parse_args(argv)
    if args.command == "passed":
        ok, line = passed(args.grade_id, args.record)
        print(line)
        return 0 if ok else 1
    from pose_utils.fileio import write_text

    root = Path(args.root)
    try:
        write_text(root / WORKFLOW, workflow(root / "notebooks"))
    except PoseUtilsError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"wrote {root / WORKFLOW}: {len(public_checks(root / 'notebooks'))} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
