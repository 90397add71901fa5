"""nbval settings for `pytest --nbval-lax notebooks/` (graders) and `make test`.

- stderr is never compared: TensorFlow and absl write start-up lines to stderr before logging is
  configured; they appear in notebooks saved by JupyterLab or papermill but not in nbval's own run.
- Widget views, HTML and JavaScript (tqdm bars, ipywidgets, animations) and the values a notebook records
  for the runner (pose_course.RECORD_MIME) are not compared either; PNG images never are.
Only cells marked `# NBVAL_CHECK_OUTPUT` are compared in lax mode; their stored outputs are plain text.
- Numbers in those outputs match within the cell's tolerance (pose_course.check_outputs: default
  rtol 1e-6, atol 1e-9, or a `# CHECK_TOLERANCE rtol=.. atol=..` line), as the grader compares them.

Each notebook executes once in `make test` (`pytest tests notebooks --nbval-lax ...`): tests/test_notebooks.py
runs the five with papermill first and leaves its executed copies on the session's config
(pose_course.stored_outputs.SESSION_EXECUTED). nbval's items for a notebook that session already executed
check that copy instead of starting a kernel: every cell ran without an error, and each checked cell's
outputs equal the stored ones by nbval's own comparison and the rules above. Run on their own (graders,
a student's folder), nbval executes every notebook itself as usual.
"""

import copy
import os
from pathlib import Path

import pytest

from pose_course.records import RECORD_MIME
from pose_course.stored_outputs import SESSION_EXECUTED

# Quiet TensorFlow's C++ logging and tqdm in the kernels nbval starts (they inherit this environment).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("TQDM_DISABLE", "1")

SKIP_COMPARE = (
    "stderr",
    "text/html",
    "application/javascript",
    "application/vnd.jupyter.widget-view+json",
    RECORD_MIME,
)


def pytest_configure(config):
    from nbval.plugin import IPyNbCell

    from pose_course.check_outputs import install

    install(IPyNbCell)


def pytest_collectstart(collector):
    """Add our skips to every notebook nbval collects (its IPyNbFile collector has `skip_compare`), and
    let it read the session's executed copy of the notebook where there is one."""
    if hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + tuple(
            k for k in SKIP_COMPARE if k not in collector.skip_compare
        )
        start_kernel = collector.setup

        def setup():
            copies = getattr(collector.config, SESSION_EXECUTED, {})
            executed = copies.get(str(Path(collector.path).resolve()))
            if executed is None:
                return start_kernel()
            import nbformat

            collector.executed_cells = {c.get("id"): c for c in nbformat.read(executed, as_version=4).cells}

        collector.setup = setup


def pytest_itemcollected(item):
    """A cell of a notebook the session already executed is checked on that execution (see above)."""
    if hasattr(item, "cell") and hasattr(item, "compare_outputs"):
        run_in_kernel = item.runtest

        def runtest():
            return _check_executed(item) if hasattr(item.parent, "executed_cells") else run_in_kernel()

        item.runtest = runtest


def _check_executed(item):
    """What nbval's IPyNbCell.runtest checks once the kernel has answered, on the executed cell's outputs."""
    import nbformat
    from nbval.plugin import coalesce_streams

    if item.options["skip"]:
        pytest.skip()
    ran = item.parent.executed_cells.get(item.cell.get("id"))
    if ran is None:
        item.raise_cell_error(f"the session's executed copy has no cell with id {item.cell.get('id')!r}")
    outs = [nbformat.from_dict(copy.deepcopy(dict(o))) for o in ran.get("outputs", [])]
    errors = [o for o in outs if o.output_type == "error"]
    if errors and not item.options["check_exception"]:
        item.raise_cell_error("Cell execution caused an exception", "\n" + "\n".join(errors[0].traceback))
    outs = coalesce_streams(outs)
    unrun = item.cell.execution_count is None
    if unrun and item.cell.outputs:
        item.raise_cell_error("Unrun reference cell has outputs")
    if item.options["check"] and not unrun:
        if not item.compare_outputs(outs, coalesce_streams(item.cell.outputs)):
            item.raise_cell_error("Cell outputs differ", "\n".join(item.comparison_traceback))


# The assignment's checks (pose_course.checks): points per check cell and the exercises still to
# write, printed at the end of the run (`make check` shows only this summary).
from pose_course.checks import Tally  # noqa: E402

_TALLY = Tally(package=Path(__file__).resolve().parents[1] / "pose_utils")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    _TALLY.record_check(item, report)
    _TALLY.skip_if_unwritten(item, report)


def pytest_terminal_summary(terminalreporter):
    for line in _TALLY.summary_lines():
        terminalreporter.write_line(line)


def pytest_addoption(parser):
    parser.addoption("--check-record", metavar="PATH", default=None,
                     help="write each check's outcome there as JSON (make check; pose_course.classroom)")


def pytest_sessionfinish(session, exitstatus):
    """A failed check fails the run, even when its cell is reported as skipped (unwritten exercise); the
    record of the checks is written for GitHub Classroom's steps when asked (`--check-record`)."""
    if exitstatus == 0 and not _TALLY.all_checks_passed:
        session.exitstatus = 1
    record = session.config.getoption("check_record", None)
    if record:
        from pose_course.classroom import write_record

        write_record(record, _TALLY.checks)
