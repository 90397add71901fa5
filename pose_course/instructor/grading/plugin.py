"""The grader's side inside the sandbox: a pytest plugin, and the script that runs a student's notebooks.

Never imported by the grader: pose_course.instructor.grading.runs copies this file's text into the batch's
helper folder (with check_outputs.py beside it), and the sandboxed pytest loads it with
`-p _pose_utils_grader` (the checks, steps 2-3 of the contract in grade's docstring) or
Python runs it as `python -P _pose_utils_grader.py papermill SPEC.json` (step 4) or
`python -P _pose_utils_grader.py predict SPEC.json` (step 2b: the submitted model on the hidden frames;
that process imports the student's package, so nothing it says is believed: grading/model_grade.py).

Importing it connects to the grader's channel (pose_course.instructor.grading.channel) before any code of the
submission runs, takes the grader's variables out of the environment and makes the process
non-dumpable. Everything the grader learns of the run (each check's outcome, the outputs it compared, the
error a cell raised, the digest of the JUnit report) goes through that connection, which no other
process of the sandbox can reach.

It imports nothing of pose_utils: inside the sandbox, `pose_utils` is the student's package.
"""

import ctypes
import hashlib
import json
import os
import re
import socket
import sys
import time

# The names channel and runs pass them under (CHANNEL_VAR, KERNEL_PATH_VAR);
# spelled out here because this file cannot import them. Popped: the kernels never see them.
CHANNEL = os.environ.pop("POSE_UTILS_GRADER_CHANNEL", None)
KERNEL_PATH = os.environ.pop("POSE_UTILS_GRADER_KERNEL_PATH", None)
if KERNEL_PATH is not None:
    os.environ["PYTHONPATH"] = KERNEL_PATH  # only the kernels (started later) import the student's code
_channel = None
if CHANNEL:
    _channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # not inherited by children (CLOEXEC)
    _channel.connect(CHANNEL)
try:  # non-dumpable: no process of the sandbox can read this one's memory, environment or descriptors
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
except Exception:
    pass
# What notebooks/conftest.py never compares (stderr, rich output, widgets, the runner's records).
SKIP_COMPARE = ("stderr", "text/html", "application/javascript", "application/vnd.jupyter.widget-view+json",
                "application/vnd.pose-utils.record+json")
MAX_REPR = 20000
MAX_OUTPUT = 200_000  # characters of one compared output sent to the grader
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def send(message):
    """One message to the grader (nothing when there is no channel: a run by hand)."""
    if _channel is not None:
        _channel.sendall(json.dumps(message).encode() + b"\n")


def pytest_configure(config):
    try:
        from queue import Empty

        import _pose_utils_check_outputs as check_outputs  # check_outputs.py, copied beside this file
        from nbval.kernel import RunningKernel
        from nbval.plugin import IPyNbCell
    except ImportError:
        return
    check_outputs.install(IPyNbCell)

    # nbval waits the whole cell limit for a kernel that died (killed, os._exit): notice it at once
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


def _cut(text, limit):
    return text if len(text) <= limit else text[:limit]


def _flat(flat):
    return {str(k): [_cut(v, MAX_OUTPUT) if isinstance(v, str) else repr(v)[:MAX_OUTPUT] for v in values]
            for k, values in flat.items()}


def _traceback(blocks):
    return [_cut(_ANSI.sub("", str(t)), MAX_REPR) for t in blocks or []][-30:]


def error_of(outputs):
    """The first error output of a cell as {ename, evalue, traceback}, colours removed."""
    for out in outputs or []:
        if out.get("output_type") == "error":
            return {"ename": str(out.get("ename", "")), "evalue": _cut(str(out.get("evalue", "")), MAX_REPR),
                    "traceback": _traceback(out.get("traceback", []))}
    return None


try:  # only the hook below needs pytest; the papermill script does not
    import pytest
except ImportError:
    pytest = None

if pytest is not None:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            text = str(report.longrepr) if report.longrepr is not None else ""
            message = {"type": "result", "nodeid": report.nodeid, "when": report.when,
                       "outcome": (report.outcome if report.when == "call" else
                                   "error" if report.failed else "skipped"),
                       "text": _cut(text, MAX_REPR), "cut": max(0, len(text) - MAX_REPR),
                       "seconds": round(float(getattr(report, "duration", 0.0)), 3)}
            compared = getattr(item, "compared_outputs", None)
            if compared is not None:
                message["expected"], message["got"] = _flat(compared[0]), _flat(compared[1])
            message["error"] = error_of(getattr(item, "test_outputs", None))
            send(message)
        if isinstance(report.longrepr, str) and len(report.longrepr) > MAX_REPR:
            more = len(report.longrepr) - MAX_REPR
            report.longrepr = report.longrepr[:MAX_REPR] + f"\n[grader: {more} more characters cut]"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(session, exitstatus):
        # after junitxml has written the report: its digest lets the grader see a later rewrite
        path = getattr(session.config.option, "xmlpath", None)
        digest = None
        if path and os.path.isfile(path):
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        send({"type": "finish", "exitstatus": int(exitstatus), "report_sha256": digest})


def _papermill(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    import papermill
    for nb in spec["notebooks"]:
        entry = {"type": "notebook", "name": os.path.basename(nb["input"]), "ok": False, "error": None}
        try:
            names = papermill.inspect_notebook(nb["input"]).keys()
            params = {k: v for k, v in spec["parameters"].items() if k in names}
            papermill.execute_notebook(nb["input"], nb["output"], parameters=params, kernel_name="python3",
                                       language="python", progress_bar=False, cwd=nb["cwd"],
                                       execution_timeout=spec["cell_timeout"], start_timeout=60)
            entry["ok"] = True
        except Exception as e:
            if hasattr(e, "ename"):
                entry["cell"] = e.cell_index + 1
                entry["error"] = {"ename": str(e.ename), "evalue": _cut(str(e.evalue or ""), MAX_REPR),
                                  "traceback": _traceback(e.traceback)}
            else:
                first = (str(e).strip().splitlines() or [""])[0]
                entry["error"] = {"ename": type(e).__name__, "evalue": first[:1000], "traceback": []}
        send(entry)


def _predict(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    import numpy as np

    if KERNEL_PATH is not None:
        sys.path.insert(0, KERNEL_PATH)  # the student's pose_utils: its layers, registered with Keras
    try:
        from pose_utils.models import register_layers
        register_layers()
    except Exception as e:  # a model of plain Keras layers still loads
        print(f"pose_utils.models.register_layers failed: {type(e).__name__}: {e}", file=sys.stderr)
    import keras

    try:
        model = keras.saving.load_model(spec["model"], compile=False, safe_mode=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:300]
        sys.exit(f"model.keras does not load in Keras's safe mode: {type(e).__name__}: {first}")
    frames = np.load(spec["frames"], mmap_mode="r")
    size = int(spec["batch_size"])
    outputs = []
    for start in range(0, len(frames), size):
        x = np.asarray(frames[start:start + size], dtype=np.float32) / 255.0
        outputs.append(np.asarray(model(x, training=False), dtype=np.float32))
    tmp = spec["output"] + ".tmp.npy"
    np.save(tmp, np.concatenate(outputs))
    os.replace(tmp, spec["output"])


if __name__ == "__main__" and sys.argv[1:2] == ["papermill"]:
    _papermill(sys.argv[2])
elif __name__ == "__main__" and sys.argv[1:2] == ["predict"]:
    _predict(sys.argv[2])
