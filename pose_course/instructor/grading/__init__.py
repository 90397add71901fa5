"""Grading submissions: `python -m pose_utils grade` (grade.py's docstring is the walk, step by step).

    grade            the command: a batch of submissions -> grades.csv, feedback, the batch's records
    intake           step 1: a folder or a .zip brought in (what a course repository is, what is left out)
    untrusted        a submission's files on the grader's side: unzip, copy, read back, remove
    answer_key       the instructor's notebooks as the grader reads them: checks and written answers
    results          what each step hands the next: small dataclasses; Result is a result.json
    runs             steps 2 and 4: the sandboxed runs (the instructor's checks, the student's notebooks)
    sandbox          bubblewrap and its limits
    host_identity    who a sandboxed run is on the host, and what that uid can reach
    sandbox_prelude  the first code a sandboxed run executes (drops what it must not keep)
    channel          the one-way socket a sandboxed run reports through
    plugin           the grader's pytest plugin, loaded inside the sandbox
    scoring          step 3: points from the outcomes
    feedback         step 5: what a student reads
"""
