"""The grader's side inside the sandbox: a pytest plugin, and the script that runs a student's notebooks.

Never imported by the grader: pose_utils.course.sandboxed_runs copies this file's text into the batch's
helper folder, and the sandboxed pytest loads it with `-p _pose_utils_grader` (the checks, steps 2-3 of
the contract in pose_utils.course.grade's docstring) or Python runs it as
`python -P _pose_utils_grader.py papermill SPEC.json` (step 4). Importing it takes the grader's
variables out of the environment and makes the process non-dumpable, which only the sandboxed process
wants.

It imports nothing of pose_utils: inside the sandbox, `pose_utils` is the student's package.
"""

import ctypes
import hashlib
import hmac
import json
import os
import sys
import time

# The names pose_utils.course.sandboxed_runs passes them under (TOKEN_VAR, RECORD_VAR, KERNEL_PATH_VAR);
# spelled out here because this file cannot import it. Popped: the kernels never see them.
TOKEN = os.environ.pop("POSE_UTILS_GRADER_TOKEN", "").encode()
RECORD = os.environ.pop("POSE_UTILS_GRADER_RECORD", None)
KERNEL_PATH = os.environ.pop("POSE_UTILS_GRADER_KERNEL_PATH", None)
if KERNEL_PATH is not None:
    os.environ["PYTHONPATH"] = KERNEL_PATH  # only the kernels (started later) import the student's code
try:  # non-dumpable: no process of the sandbox can read this one's memory, environment or files
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
except Exception:
    pass
# What notebooks/conftest.py never compares (stderr, rich output, widgets, the runner's records).
SKIP_COMPARE = ("stderr", "text/html", "application/javascript", "application/vnd.jupyter.widget-view+json",
                "application/vnd.pose-utils.record+json")
MAX_REPR = 20000
_outcomes = {}


def pytest_configure(config):
    # nbval waits the whole cell limit for a kernel that died (killed, os._exit): notice it at once
    try:
        from queue import Empty

        from nbval.kernel import RunningKernel
    except ImportError:
        return
    original = RunningKernel.get_message

    def get_message(self, stream, timeout=None):
        if stream != "shell" or timeout is None:
            return original(self, stream, timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return original(self, stream, timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            except Empty:
                if not self.is_alive():
                    raise RuntimeError("Kernel died while the cell ran (killed, or it exited)") from None
                if time.monotonic() >= deadline:
                    raise

    RunningKernel.get_message = get_message


def pytest_collectstart(collector):
    if hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + tuple(
            k for k in SKIP_COMPARE if k not in collector.skip_compare)


def pytest_collection_finish(session):
    # nbval holds every notebook in memory now; no kernel has started yet
    for path in sorted({str(item.path) for item in session.items}):
        try:
            os.unlink(path)
        except OSError:
            pass


try:  # only the hook below needs pytest; the papermill script does not
    import pytest
except ImportError:
    pytest = None

if pytest is not None:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        text = report.longrepr if isinstance(report.longrepr, str) else None
        if text is not None and len(text) > MAX_REPR:
            report.longrepr = text[:MAX_REPR] + f"\n[grader: {len(text) - MAX_REPR} more characters cut]"
            _outcomes.setdefault(report.nodeid, {})["cut"] = len(text) - MAX_REPR


def pytest_runtest_logreport(report):
    entry = _outcomes.setdefault(report.nodeid, {})
    if report.when == "setup" and not report.passed:
        entry["outcome"] = "error" if report.failed else "skipped"
    elif report.when == "call":
        entry["outcome"] = report.outcome


def _write(payload):
    if RECORD:
        text = json.dumps(payload, sort_keys=True)
        signature = hmac.new(TOKEN, text.encode(), hashlib.sha256).hexdigest()
        with open(RECORD, "w") as f:
            json.dump({"payload": payload, "hmac": signature}, f)


def pytest_sessionfinish(session, exitstatus):
    _write({"outcomes": _outcomes, "exitstatus": int(exitstatus)})


def _papermill(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    import papermill
    status = []
    for nb in spec["notebooks"]:
        entry = {"name": os.path.basename(nb["input"]), "ok": False}
        try:
            names = papermill.inspect_notebook(nb["input"]).keys()
            params = {k: v for k, v in spec["parameters"].items() if k in names}
            papermill.execute_notebook(nb["input"], nb["output"], parameters=params, kernel_name="python3",
                                       language="python", progress_bar=False, cwd=nb["cwd"],
                                       execution_timeout=spec["cell_timeout"], start_timeout=60)
            entry["ok"] = True
        except Exception as e:
            if hasattr(e, "ename"):
                entry["error"] = f"cell {e.cell_index + 1} raised {e.ename}: {(e.evalue or '')[:500]}"
            else:
                first = (str(e).strip().splitlines() or [""])[0]
                entry["error"] = f"{type(e).__name__}: {first}"[:1000]
        status.append(entry)
        with open(spec["status"], "w") as f:
            json.dump(status, f)


if __name__ == "__main__" and sys.argv[1:2] == ["papermill"]:
    _papermill(sys.argv[2])
