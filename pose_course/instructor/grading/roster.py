"""Who each submission is, and whether it came late: the roster (OUT/roster.csv) and the late policy
(OUT/policy.json), both optional, copied into OUT by `grade --roster/--policy` or `gradebook sheets`.

roster.csv (a header line; other columns are ignored; `submitted_at` is optional, e.g. from the LMS):

    student_id,name,email,submission,submitted_at
    s001,Ada Lovelace,ada@example.edu,ada-pa4,2026-12-01T23:40:00-05:00

policy.json (times in ISO 8601 with their UTC offset; extensions and overrides keyed by student_id, or by
submission name without a roster):

    {"deadline": "2026-12-01T23:59:00-05:00", "grace_minutes": 10, "penalty_percent_per_day": 10,
     "max_late_days": 3, "extensions": {"s001": "2026-12-03T23:59:00-05:00"},
     "overrides": {"s002": {"penalty_percent": 0, "reason": "medical note, approved 12/02"}}}

A submission's time is the roster's `submitted_at` when given (the LMS's clock), else what its files say
(the zip's newest entry, or the repository's last commit: both set by the student's machine, so stated
in the feedback as such); without either, no penalty is applied and the sheet says why.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from pose_utils.errors import ConfigError

ROSTER_FILE = "roster.csv"
POLICY_FILE = "policy.json"
ROSTER_COLUMNS = ("student_id", "name", "email", "submission")
POLICY_KEYS = {"deadline", "grace_minutes", "penalty_percent_per_day", "max_late_days", "extensions",
               "overrides"}
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Student:
    student_id: str
    name: str
    email: str
    submission: str
    submitted_at: str = ""


@dataclass
class Late:
    """One submission under the policy."""
    submitted: str = ""  # ISO time, or "" when unknown
    how: str = ""  # where the time came from
    due: str = ""
    days: int = 0
    penalty_percent: float = 0.0
    note: str = ""  # one line for the feedback: late by, the extension, the override and its reason


def parse_time(text: str, where: str, zone: datetime.tzinfo | None = None) -> datetime.datetime:
    """An ISO 8601 time; one without an offset is read in `zone` (a zip's times carry none) and refused
    when there is no zone to read it in."""
    try:
        t = datetime.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a time (ISO 8601, e.g. 2026-12-01T23:59:00-05:00)"
                          ) from None
    if t.tzinfo is None:
        if zone is None:
            raise ConfigError(f"{where}: {text!r} has no UTC offset (write e.g. 2026-12-01T23:59:00-05:00)")
        t = t.replace(tzinfo=zone)
    return t


def read_roster(path) -> list[Student]:
    """The roster's students; ConfigError naming the file, the line and what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's export may start with a BOM
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"roster {path}: unreadable ({type(e).__name__}: {e})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ROSTER_COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"roster {path}: no column {', '.join(missing)} in its first line (needs "
                          f"{','.join(ROSTER_COLUMNS)}; submitted_at optional)")
    students, ids, subs = [], {}, {}
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        s = Student(*(row.get(c, "") for c in ROSTER_COLUMNS), submitted_at=row.get("submitted_at", ""))
        for key, seen in (("student_id", ids), ("submission", subs)):
            value = getattr(s, key)
            if not value:
                raise ConfigError(f"roster {path} line {line}: empty {key}")
            if value in seen:
                raise ConfigError(f"roster {path} line {line}: {key} {value!r} also on line {seen[value]}")
            seen[value] = line
        if s.submitted_at:
            parse_time(s.submitted_at, f"roster {path} line {line} submitted_at")
        students.append(s)
    return students


@dataclass
class Policy:
    deadline: datetime.datetime
    grace_minutes: float = 0.0
    penalty_percent_per_day: float = 10.0
    max_late_days: float = math.inf  # later than this many days: no points
    extensions: dict = field(default_factory=dict)  # key -> datetime
    overrides: dict = field(default_factory=dict)  # key -> {"penalty_percent", "reason"}

    @classmethod
    def read(cls, path) -> Policy:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"policy {path}: unreadable ({type(e).__name__}: {e})") from None
        if not isinstance(raw, dict) or "deadline" not in raw:
            raise ConfigError(f"policy {path}: expected an object with a \"deadline\"")
        unknown = sorted(set(raw) - POLICY_KEYS)
        if unknown:
            raise ConfigError(f"policy {path}: unknown key {', '.join(unknown)} (known: "
                              f"{', '.join(sorted(POLICY_KEYS))})")
        policy = cls(parse_time(raw["deadline"], f"policy {path} deadline"))
        for key in ("grace_minutes", "penalty_percent_per_day", "max_late_days"):
            if key in raw:
                value = raw[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                    raise ConfigError(f"policy {path}: {key} must be a number >= 0, got {value!r}")
                setattr(policy, key, float(value))
        for key, value in _object(raw, "extensions", path).items():
            policy.extensions[key] = parse_time(value, f"policy {path} extension of {key}")
        for key, value in _object(raw, "overrides", path).items():
            penalty = value.get("penalty_percent") if isinstance(value, dict) else None
            reason = value.get("reason") if isinstance(value, dict) else None
            if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not 0 <= penalty <= 100:
                raise ConfigError(f"policy {path}: override of {key}: penalty_percent must be 0 to 100, "
                                  f"got {penalty!r}")
            if not isinstance(reason, str) or not reason.strip():
                raise ConfigError(f"policy {path}: override of {key}: give its \"reason\"")
            policy.overrides[key] = {"penalty_percent": float(penalty), "reason": reason.strip()}
        return policy

    def late(self, key: str, submitted: str, how: str) -> Late:
        """The policy applied to one submission, keyed by student_id (or submission name)."""
        due = self.extensions.get(key, self.deadline)
        late = Late(submitted=submitted, how=how, due=due.isoformat())
        extended = " (extended)" if key in self.extensions else ""
        if submitted:
            t = parse_time(submitted, f"the submission time of {key}", zone=self.deadline.tzinfo)
            over = t - due - datetime.timedelta(minutes=self.grace_minutes)
            if over > datetime.timedelta(0):
                late.days = math.ceil(over / DAY)
                late.penalty_percent = (100.0 if late.days > self.max_late_days
                                        else min(100.0, late.days * self.penalty_percent_per_day))
                late.note = (f"submitted {t.isoformat()} ({how}), {_duration(t - due)} after the deadline "
                             f"{due.isoformat()}{extended}: {late.days} day(s) late, "
                             f"-{late.penalty_percent:g} %")
            else:
                late.note = (f"on time: submitted {t.isoformat()} ({how}), deadline "
                             f"{due.isoformat()}{extended}")
        else:
            late.note = f"no submission time known ({how}); no late penalty applied"
        if key in self.overrides:
            o = self.overrides[key]
            late.penalty_percent = o["penalty_percent"]
            late.note += f"; penalty set to {o['penalty_percent']:g} % by the instructor: {o['reason']}"
        return late


def _object(raw: dict, key: str, path: Path) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"policy {path}: {key} must be an object keyed by student_id")
    return value


def _duration(delta: datetime.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{days} d " if days else "") + f"{hours} h {minutes:02d} min"


@dataclass
class Course:
    """The roster and policy of a graded batch, read from OUT (either may be absent)."""
    students: list = field(default_factory=list)  # Student, in roster order
    policy: Policy | None = None

    @classmethod
    def read(cls, out_dir) -> Course:
        out_dir = Path(out_dir)
        roster, policy = out_dir / ROSTER_FILE, out_dir / POLICY_FILE
        return cls(read_roster(roster) if roster.is_file() else [],
                   Policy.read(policy) if policy.is_file() else None)

    def student(self, name: str) -> Student | None:
        return next((s for s in self.students if s.submission == name), None)

    def unmatched(self, names) -> list[str]:
        """One line each: graded submissions on no roster line, roster students with no submission."""
        if not self.students:
            return []
        names = set(names)
        listed = {s.submission for s in self.students}
        return ([f"{n}: graded, but on no line of the roster" for n in sorted(names - listed)] +
                [f"{s.student_id} ({s.name}): no submission named {s.submission!r}"
                 for s in self.students if s.submission not in names])

    def late(self, name: str, submitted: dict | None) -> Late | None:
        """The policy on submission NAME (None without a policy): the roster's time first."""
        if self.policy is None:
            return None
        s = self.student(name)
        key = s.student_id if s else name
        if s and s.submitted_at:
            return self.policy.late(key, s.submitted_at, "the roster's submitted_at")
        submitted = submitted or {}
        return self.policy.late(key, submitted.get("at") or "", submitted.get("how") or "not recorded")


def install(out_dir, roster=None, policy=None) -> None:
    """Check ROSTER and POLICY, then copy them into OUT (where the sheets read them); None keeps OUT's."""
    import shutil

    out_dir = Path(out_dir)
    if roster is not None:
        read_roster(roster)
    if policy is not None:
        Policy.read(policy)
    out_dir.mkdir(parents=True, exist_ok=True)
    from pose_utils.fileio import atomic_path

    for given, name in ((roster, ROSTER_FILE), (policy, POLICY_FILE)):
        if given is not None and Path(given).resolve() != (out_dir / name).resolve():
            with atomic_path(out_dir / name) as tmp:
                shutil.copyfile(given, tmp)
