"""`python -m pose_utils gradebook ACTION OUT`: serve (the marking page), sheets (grades.csv, grades.md
and the feedback again, with a roster and policy given now), canvas (the Canvas CSV)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pose_course.instructor.grading.answer_key import read_instructor
from pose_course.instructor.grading.feedback import write_grades
from pose_course.instructor.grading.grade import _repository_root, given_flag, graded_results
from pose_course.instructor.grading.roster import install
from pose_utils.errors import ConfigError


def main(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    if not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: no such folder (the --out of a `grade` run)")
    instructor_root = given_flag(args, "instructor", None) or _repository_root()
    install(out_dir, getattr(args, "roster", None), getattr(args, "policy", None))
    if args.action == "serve":
        from pose_course.instructor.gradebook.server import serve

        serve(out_dir, instructor_root, port=args.port,
              ready=lambda url: print(f"gradebook of {out_dir} at {url} (Ctrl-C to stop)", flush=True))
        return 0
    results = graded_results(out_dir.resolve(), [])
    if not results:
        raise ConfigError(f"{out_dir}: no graded submission in it (run `python -m pose_utils grade` first)")
    instructor = read_instructor(instructor_root)
    if args.action == "sheets":
        write_grades(out_dir.resolve(), results, instructor)
        print(f"{len(results)} submissions: {out_dir / 'grades.csv'}, {out_dir / 'grades.md'}, feedback")
    elif args.action == "canvas":
        from pose_course.instructor.gradebook.canvas import write_canvas

        if not args.to:
            raise ConfigError("gradebook canvas: give --to FILE.csv")
        for line in write_canvas(out_dir, results, instructor, args.assignment, args.to):
            print(f"note: {line}")
        print(f"Canvas gradebook CSV: {args.to} (Grades > Import in Canvas)")
    return 0
