"""A submission's standing in the course: its automatic points (result.json), the hand marks of its
written answers (marks.py), who it is (roster.py) and the late policy, combined for the sheets and the
feedback (feedback.py). Read from OUT each time the sheets are written, so a mark saved in the gradebook
page, a roster given later and a regrade all land in the same totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pose_course.instructor.grading.answer_key import Instructor
from pose_course.instructor.grading.marks import read_marks
from pose_course.instructor.grading.results import Result
from pose_course.instructor.grading.roster import Course, Late, Student


@dataclass
class Standing:
    result: Result
    answer_points: dict  # grade_id -> the answer's points
    marks: dict = field(default_factory=dict)  # grade_id -> Mark
    student: Student | None = None
    late: Late | None = None

    @property
    def hand(self) -> float:
        return sum(m.points for gid, m in self.marks.items() if gid in self.answer_points)

    @property
    def points(self) -> float:
        """Automatic points and hand marks, before any late penalty."""
        return self.result.total + self.hand

    @property
    def max(self) -> float:
        return self.result.max + sum(self.answer_points.values())

    @property
    def final(self) -> float:
        penalty = self.late.penalty_percent if self.late else 0.0
        return round(self.points * (1 - penalty / 100), 4)

    @property
    def to_mark(self) -> list[str]:
        return [gid for gid in self.answer_points if gid not in self.marks]


def standings(out_dir, results: list[Result], instructor: Instructor) -> tuple[list[Standing], Course]:
    """The standing of each result, and the batch's roster and policy (read from OUT)."""
    out_dir = Path(out_dir)
    course = Course.read(out_dir)
    marks = read_marks(out_dir)
    answers = {a.grade_id: a.points for a in instructor.answers}
    found = []
    for r in results:
        found.append(Standing(r, answers, {g: m for g, m in marks.get(r.name, {}).items() if g in answers},
                              course.student(r.name), course.late(r.name, r.submitted)))
    return found, course
