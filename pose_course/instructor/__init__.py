"""The instructor's tools: never released. `python -m pose_utils release` copies the repository without
this folder (the release rule is the folder, not a list of files), so whatever lands here, a module, a
test, a benchmark or a script, stays with the instructor.

    release         the student version of the repository (`make release`)
    grading/        `python -m pose_utils grade`: submissions graded in a sandbox (grading/grade.py's
                    docstring walks a submission from the command's argument to grades.csv)
    tests/          their tests (collected by `make test` beside tests/ and notebooks/)
    benchmarks/     the grader's speed (benchmarks/grading.py)
    system-packages the Debian packages the grader's and the browser's tests need, installed by
                    `make test` when run as root
"""
