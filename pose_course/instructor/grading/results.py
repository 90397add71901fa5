"""What each step of grading a submission hands the next (grade.py's docstring): small dataclasses, not
string-keyed dicts, in the spirit of otter-grader's `GradingResults`.

    ChecksRun    step 2 -> 3: the sandboxed nbval run, its JUnit report and what its channel said
    OwnRun       step 4: the student's notebooks as submitted (one NotebookRun each)
    CheckScore   step 3 -> 5: one check's points, outcome and what the student sees of a failure
    Answer       a written answer's text, graded by hand
    ModelScore   step 2b: the submitted model on the hidden clips (grading/model_grade.py)
    Problem      one line of trouble (a code for the status column, a line for people)
    Result       one submission: all of the above; `to_dict()` is its result.json (what `grade` returns)
                 and `from_dict` reads one back when a regrade rewrites the batch's sheets
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Problem:
    code: str  # hung, crashed, out_of_memory, tampered, ... (the status column)
    line: str  # one line for people


@dataclass
class ChecksRun:
    run: object  # sandbox.RunResult
    report: bytes | None  # the JUnit report, read back as untrusted data
    results: dict  # nodeid -> the plugin's message for that check (type "result")
    finish: dict | None  # the plugin's last message, with the report's hash; None if pytest never finished
    tampered: bool  # the report is not the one pytest wrote
    overflow: bool  # the channel dropped messages past its limit
    box: Path  # the run's folder (its copy of the submission is box/repo)


@dataclass
class NotebookRun:
    name: str
    ok: bool = False
    error: str | None = None  # one line: why it did not run to the end
    path: str | None = None  # the executed copy in the submission's grading folder


@dataclass
class OwnRun:
    run: object | None  # sandbox.RunResult; None when the submission has no notebooks
    notebooks: list[NotebookRun] = field(default_factory=list)


@dataclass
class CheckScore:
    points: float
    earned: float
    outcome: str  # passed, failed, skipped, missing
    notebook: str
    cell: int  # 1-based, as JupyterLab counts
    hidden: bool
    text: str  # the failure as pytest reported it (scrubbed of the grader's paths)
    seconds: float | None
    cut: int  # characters of the failure the plugin dropped
    error: str | None = None  # a public check that raised: the student's frames of the error
    expected: str | None = None  # a public check whose output differed: the outputs compared
    got: str | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if v is not None or k not in ("error", "expected", "got")}


@dataclass
class Answer:
    text: str | None = None
    note: str | None = None  # missing, unreadable or not answered


@dataclass
class ModelScore:
    points: float
    earned: float = 0.0
    mpjpe_mm: float | None = None
    p_mpjpe_mm: float | None = None
    per_joint_mm: list[float] | None = None
    parameters: int | None = None
    seconds: float | None = None  # loading and predicting, in the sandbox
    full_at_mm: float | None = None
    zero_at_mm: float | None = None
    problem: str | None = None  # one line: why the model earned nothing
    baselines: dict = field(default_factory=dict)  # name -> MPJPE (mm) on the same clips
    baseline_per_joint_mm: list[float] | None = None  # the mean pose's, joint by joint
    pseudonym: str | None = None  # the submission's name on the leaderboard


@dataclass
class Result:
    name: str
    source: str
    max: float
    problems: list[Problem] = field(default_factory=list)
    checks: dict[str, CheckScore] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    notebooks: list[NotebookRun] = field(default_factory=list)
    runs: dict = field(default_factory=dict)  # "checks" / "notebooks" / "model" -> the sandbox's record
    model: ModelScore | None = None  # graded with --hidden-data
    submitted: dict = field(default_factory=dict)  # {"at", "how"}: intake.submission_time
    total: float = 0.0
    seconds: float = 0.0
    status: str = "ok"

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source,
                "problems": [dataclasses.asdict(p) for p in self.problems],
                "checks": {gid: c.to_dict() for gid, c in self.checks.items()},
                "answers": {gid: dataclasses.asdict(a) for gid, a in self.answers.items()},
                "notebooks": [dataclasses.asdict(n) for n in self.notebooks],
                "runs": self.runs, "model": dataclasses.asdict(self.model) if self.model else None,
                "submitted": self.submitted,
                "total": self.total, "max": self.max, "seconds": self.seconds,
                "status": self.status}

    @classmethod
    def from_dict(cls, d: dict) -> Result:
        """A result.json read back (written by `to_dict`); ValueError if it is not one."""
        try:
            return cls(name=str(d["name"]), source=str(d["source"]), max=float(d["max"]),
                       problems=[Problem(**p) for p in d["problems"]],
                       checks={gid: CheckScore(**c) for gid, c in d["checks"].items()},
                       answers={gid: Answer(**a) for gid, a in d["answers"].items()},
                       notebooks=[NotebookRun(**n) for n in d["notebooks"]], runs=dict(d["runs"]),
                       model=ModelScore(**d["model"]) if d.get("model") else None,
                       submitted=dict(d.get("submitted") or {}),
                       total=float(d["total"]), seconds=float(d["seconds"]), status=str(d["status"]))
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(f"not a grading result ({type(e).__name__}: {e})") from None
