"""The instructor's tests (grading, release, the assignment round trip, the browser): the settings of
tests/conftest.py, and tests/ on the import path for the helpers they share (test_lab's switch to user
`nobody`), so that they run alike alone (`pytest pose_course/instructor/tests`) and in `make test`."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("TQDM_DISABLE", "1")

TESTS = str(Path(__file__).resolve().parents[3] / "tests")
if TESTS not in sys.path:
    sys.path.append(TESTS)
