#!/usr/bin/env bash
# The autograder bundle's setup.sh (python -m pose_utils gradescope bundle): Gradescope runs it once, as
# root, when it builds the autograder's image. It installs the instructor's repository (this zip, unpacked
# into /autograder/source) into a virtual environment with pip and nothing else, closes the source to
# other users (the runs of `--isolation container-user` are other users), and renders the grading data.
set -euo pipefail
ROOT="${POSE_UTILS_AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PYTHON=""
for candidate in python3.11 python3.10; do  # pybullet has Linux wheels for these two only
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
done
if [ -z "$PYTHON" ]; then
    echo "setup.sh: no python3.11 (or python3.10) here: choose a Gradescope base image that has one" >&2
    exit 2
fi
"$PYTHON" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --no-input --disable-pip-version-check -e "$SOURCE[dev]"
chmod 700 "$SOURCE"            # the hidden checks: only root may read them
chmod o+x "$ROOT"              # the runs reach their work folders under it
chmod -R o+rX "$ROOT/venv"     # and the Python they run on
cd /
"$ROOT/venv/bin/python" -m pose_course.instructor.gradebook.autograder setup --root "$ROOT"
