"""After grading: what the course does with the graded batch in OUT (docs/assignment.md, "Gradebook").

Hand marks of the written answers (marks.py, entered in the browser page of server.py), the roster and
late policy (roster.py), the sheets that combine them with the automatic results (sheets.py), and the
exports to where courses keep grades (Canvas, Gradescope).
"""
