"""Hand marks of the written answers: OUT/marks.json, the one file a human grader's points live in.

Entered in the gradebook page (pose_course/instructor/gradebook/server.py) or by hand; the sheets
(feedback.write_grades) and each feedback.md add them to the automatic points. A regrade of the checks
never touches this file, so marks survive it. The file:

    {"version": 1,
     "marks": {"NAME": {"GRADE_ID": {"points": 3, "comment": "...", "at": "2026-12-02T20:15:03Z"}}}}

Every save is a read-modify-write under an exclusive lock (OUT/.grader/marks.lock), written to a temporary
name and renamed: two graders saving at once (two browser tabs, two servers on one OUT) never lose an entry,
and a crash leaves the old file or the new one.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import math
from dataclasses import dataclass
from pathlib import Path

from pose_utils.errors import ConfigError, DataError
from pose_utils.fileio import write_json

MARKS_FILE = "marks.json"
VERSION = 1
MAX_COMMENT = 5000  # characters; a comment is feedback, not an essay


@dataclass(frozen=True)
class Mark:
    points: float
    comment: str = ""
    at: str = ""  # when it was saved, UTC


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock held on PATH (made if missing) for the block: between threads and processes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _parse(raw, path: Path) -> dict:
    """{NAME: {GRADE_ID: Mark}} from the file's JSON; DataError naming the file and the bad entry."""
    if not isinstance(raw, dict) or raw.get("version") != VERSION or not isinstance(raw.get("marks"), dict):
        raise DataError(f"{path}: not a marks file (expected {{\"version\": {VERSION}, \"marks\": {{...}}}})")
    marks = {}
    for name, entries in raw["marks"].items():
        if not isinstance(entries, dict):
            raise DataError(f"{path}: marks of {name!r} must be an object of answers")
        for gid, e in entries.items():
            points = e.get("points") if isinstance(e, dict) else None
            if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points):
                raise DataError(f"{path}: {name} / {gid}: points must be a number, got {points!r}")
            marks.setdefault(name, {})[gid] = Mark(float(points), str(e.get("comment", "")),
                                                   str(e.get("at", "")))
    return marks


def read_marks(out_dir) -> dict:
    """Every hand mark in OUT/marks.json as {NAME: {GRADE_ID: Mark}}; {} when there is no file yet."""
    path = Path(out_dir) / MARKS_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable marks file ({type(e).__name__}: {e})") from None
    return _parse(raw, path)


def save_mark(out_dir, name: str, grade_id: str, points, comment: str, answers: dict,
              names) -> Mark:
    """Record NAME's mark for the answer GRADE_ID (points between 0 and the answer's, a comment), keeping
    every other entry; `answers` maps grade_id -> its points, `names` are the graded submissions.
    ConfigError naming the value that is wrong; nothing is written then. points=None removes the mark."""
    out_dir = Path(out_dir)
    if name not in set(names):
        raise ConfigError(f"no graded submission named {name!r} in {out_dir}")
    if grade_id not in answers:
        raise ConfigError(f"{grade_id!r} is not a written answer of this assignment "
                          f"(answers: {', '.join(answers) or 'none'})")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ConfigError(f"{name} / {grade_id}: a comment must be text of at most {MAX_COMMENT} characters")
    if points is not None:
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points) \
                or not 0 <= points <= answers[grade_id]:
            raise ConfigError(f"{name} / {grade_id}: points must be a number from 0 to "
                              f"{answers[grade_id]:g}, got {points!r}")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = out_dir / MARKS_FILE
    with file_lock(out_dir / ".grader" / "marks.lock"):
        raw = {"version": VERSION, "marks": {}}
        if path.is_file():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise DataError(f"{path}: unreadable marks file ({type(e).__name__}: {e}); not overwritten"
                                ) from None
            _parse(raw, path)  # a hand-edited file that went wrong is reported, not silently replaced
        entries = raw["marks"].setdefault(name, {})
        if points is None:
            entries.pop(grade_id, None)
            mark = Mark(math.nan, "", now)
        else:
            mark = Mark(float(points), comment, now)
            entries[grade_id] = {"points": mark.points, "comment": comment, "at": now}
        if not entries:
            raw["marks"].pop(name)
        write_json(path, raw)
    return mark
