"""The instructor's tests (grading, release, the assignment round trip, the browser): the settings of
tests/conftest.py, so that they run alike alone (`pytest pose_course/instructor/tests`) and in `make test`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("TQDM_DISABLE", "1")
