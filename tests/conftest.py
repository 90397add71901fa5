"""Shared test settings: quiet TensorFlow, headless matplotlib, no progress bars."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    """A folder with the `tiny` preset (seed 0; 64x64 frames; 32 train and 16 valid clips) in both
    formats: train.h5, valid.h5, the course's four .npy files and contact_sheet.png. Made once per test
    session (about 2 s); treat it as read-only."""
    from pose_course.cli import main

    out = tmp_path_factory.mktemp("tiny_data")
    code = main(["make-data", "--out", str(out), "--preset", "tiny", "--format", "both", "--seed", "0",
                 "--workers", "1"])
    assert code == 0, "make-data --preset tiny failed"
    return out


# The student version (`make release`): a test that fails only because an exercise is still
# unwritten is reported as skipped, naming it, and the summary lists what is left to write.
from pathlib import Path  # noqa: E402

from pose_course.checks import Tally  # noqa: E402

_TALLY = Tally(package=Path(__file__).resolve().parents[1] / "pose_utils")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _TALLY.skip_if_unwritten(item, outcome.get_result())


def pytest_terminal_summary(terminalreporter):
    for line in _TALLY.summary_lines():
        terminalreporter.write_line(line)
