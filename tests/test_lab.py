"""What students and instructors meet around the notebooks: quiet kernels, `make lab` (as root and not),
and papermill run from any folder writing only into the outputs folder (course/lab.py, course/paths.py).

The browser's view of the same things is tests/browser/."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from pose_course import lab, paths, read_records

ROOT = Path(__file__).resolve().parents[1]
PAPERMILL = str(Path(sys.executable).with_name("papermill"))
slow = pytest.mark.slow


def test_defaults_are_the_repositorys_outputs_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.OUTPUTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.repository_root() == ROOT
    assert paths.outputs_root() == ROOT / "outputs"
    assert paths.default_dir(None, "data", "tiny") == ROOT / "outputs" / "nbval" / "data" / "tiny"
    assert paths.default_dir("mine", "run") == Path("mine")  # given: as given, relative to the kernel
    assert paths.notebook_path(None, "03_training.ipynb") == ROOT / "notebooks" / "03_training.ipynb"
    monkeypatch.setenv(paths.OUTPUTS_ENV, str(tmp_path / "elsewhere"))
    assert paths.default_dir(None, "run") == tmp_path / "elsewhere" / "nbval" / "run"


def test_the_environment_has_the_course_kernel_settings():
    # `make` installs them (Makefile: python -m pose_course.lab); stale ones would be rewritten there
    config = Path(sys.prefix) / lab.KERNEL_CONFIG
    assert config.read_text() == lab.kernel_config_text()
    overrides = json.loads((Path(sys.prefix) / lab.LAB_OVERRIDES).read_text())
    assert overrides["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True


def test_install_merges_into_existing_overrides(tmp_path):
    target = tmp_path / lab.LAB_OVERRIDES
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    written = lab.install(tmp_path)
    merged = json.loads(target.read_text())
    assert merged["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}  # kept
    assert merged["@jupyter-widgets/jupyterlab-manager:plugin"] == {"saveState": True}
    assert (tmp_path / lab.KERNEL_CONFIG).read_text() == lab.kernel_config_text()
    assert [p.stat().st_mode & 0o777 for p in written] == [0o644, 0o644]  # other users' kernels read it
    before = [p.stat().st_mtime_ns for p in written]
    time.sleep(0.01)
    lab.install(tmp_path)  # unchanged: not rewritten (a user who cannot write the environment still starts)
    assert [p.stat().st_mtime_ns for p in written] == before


def _environ(**extra) -> dict:
    """The environment of a user's shell: ipykernel stops forwarding C-level output into cells when it
    sees PYTEST_CURRENT_TEST, which would make these tests pass for the wrong reason."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return {**env, **extra}


def _tf_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import sys\nimport tensorflow as tf\nprint('a warning', file=sys.stderr)"),
        # tf.data and the first op: where TensorFlow prints its tf.data and cuInit notices
        nbformat.v4.new_code_cell("ds = tf.data.Dataset.range(6).batch(2)\n"
                                  "print(sum(int(b.numpy().sum()) for b in ds))"),
        nbformat.v4.new_code_cell("1 / 0"),
    ]
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@slow
def test_kernels_keep_tensorflows_cpp_notices_out_of_the_cells(tmp_path):
    _tf_notebook(tmp_path / "tf.ipynb")
    log = tmp_path / "kernel.log"
    env = _environ(**{lab.KERNEL_LOG_ENV: str(log), "TF_CPP_MIN_LOG_LEVEL": "0"})
    done = subprocess.run([PAPERMILL, "tf.ipynb", "out.ipynb"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0 and "ZeroDivisionError" in done.stderr  # a real error still stops the run
    code = [c for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells if c.cell_type == "code"]
    streams = [(o.name, o.text) for c in code for o in c.outputs if o.output_type == "stream"]
    assert streams == [("stderr", "a warning\n"), ("stdout", "15\n")]  # Python's own stderr still shows
    error = [o for o in code[2].outputs if o.output_type == "error"]
    assert error and error[0].ename == "ZeroDivisionError" and error[0].traceback  # in full
    text = log.read_text()
    assert "== kernel" in text and "I0000" in text  # TensorFlow's C++ lines went to the log
    # POSE_UTILS_KERNEL_LOG=- restores ipykernel's forwarding (to debug TensorFlow itself)
    env[lab.KERNEL_LOG_ENV] = "-"
    subprocess.run([PAPERMILL, "tf.ipynb", "raw.ipynb"], cwd=tmp_path, env=env, capture_output=True,
                   timeout=300)
    raw = [c for c in nbformat.read(tmp_path / "raw.ipynb", as_version=4).cells if c.cell_type == "code"]
    assert any("I0000" in o.text for c in raw for o in c.outputs if o.output_type == "stream")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_lab(cmd: list[str], env: dict, cwd: Path):
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    first = [proc.stdout.readline() for _ in range(2)]
    url = first[1].split("open", 1)[1].strip() if "open" in first[1] else ""
    deadline = time.monotonic() + 90
    token = url.split("token=", 1)[-1]
    port = url.split(":")[2].split("/")[0] if url else "0"
    status = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as r:
                status = json.load(r)
                break
        except OSError:
            time.sleep(0.5)
    return proc, first, url, status


def _stop(proc):
    """Stop the server's whole process group (`pose_utils lab` becomes JupyterLab itself: execve)."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=20)
    return out


def test_lab_command_allows_root_only_for_root(monkeypatch, tmp_path):
    for euid, allowed in ((0, True), (1000, False)):
        monkeypatch.setattr(os, "geteuid", lambda euid=euid: euid)
        cmd = lab.lab_command(tmp_path, 8899, open_browser=False)
        assert ("--allow-root" in cmd) is allowed
        assert {"--ServerApp.ip=127.0.0.1", "--ServerApp.port=8899", "--ServerApp.port_retries=0",
                "--no-browser", f"--ServerApp.root_dir={tmp_path}"} <= set(cmd)


NOBODY = 65534


AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]  # util-linux


def _nobody_can_run_python() -> bool:
    try:
        # what `pose_utils lab` does as that user: import pose_utils, then execve the interpreter
        probe = ("import os, sys, pose_utils; "
                 "os.execve(sys.executable, [sys.executable, '-c', 'pass'], dict(os.environ))")
        return subprocess.run([*AS_NOBODY, sys.executable, "-c", probe], capture_output=True,
                              timeout=60).returncode == 0
    except OSError:  # no setpriv
        return False


def _run_lab_as(user: str):
    """`python -m pose_utils lab` as `user` ("root" or "nobody"): its first lines, URL and /api/status."""
    # The private temporary folder of this test is world-readable so that `nobody` can use it.
    base = Path(tempfile.mkdtemp(prefix="pose-lab-"))
    try:
        base.chmod(0o755)
        home = base / "home"
        home.mkdir()
        home.chmod(0o777)
        port = _free_port()
        env = {**os.environ, "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
               "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws")}
        proc, first, url, status = _start_lab(
            [*(AS_NOBODY if user == "nobody" else []), sys.executable, "-m", "pose_utils", "lab",
             "--no-browser", "--port", str(port)], env, base)
        log = _stop(proc)
        assert first[0].startswith(f"JupyterLab on {ROOT}"), (user, first, log[-2000:])
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/notebooks?token="), (user, first)
        assert status is not None and "started" in status, (user, log[-3000:])
        assert "Running as root is not recommended" not in log
        assert proc.returncode is not None  # nothing left running
    finally:
        shutil.rmtree(base, ignore_errors=True)


@slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containers and CI run as root)")
def test_make_lab_starts_as_root():
    _run_lab_as("root")


@slow
@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_make_lab_starts_as_a_normal_user():
    if not _nobody_can_run_python():
        pytest.skip(f"user nobody cannot run {sys.executable} with pose_utils here (setpriv missing, or the "
                    "interpreter in a private folder)")
    _run_lab_as("nobody")


# ----------------------------------------------------------------------------- papermill from any folder


def _tree(root: Path, skip=(".git", ".venv", "outputs")) -> dict:
    """The repository's files outside outputs/: every name, and the modification times in notebooks/."""
    files = [p for p in root.rglob("*")
             if p.is_file() and p.relative_to(root).parts[0] not in skip and "__pycache__" not in p.parts]
    return {str(p.relative_to(root)): p.stat().st_mtime_ns if p.relative_to(root).parts[0] == "notebooks"
            else 0 for p in files}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """POSE_UTILS_OUTPUTS for these runs: the notebooks' default paths land in this temporary folder."""
    return tmp_path_factory.mktemp("outputs")


@slow
@pytest.mark.parametrize("where", ["notebooks", "elsewhere"])  # the root: the training test below
def test_papermill_runs_a_notebook_from_any_folder_with_its_defaults(where, outputs, tmp_path):
    cwd = {"notebooks": ROOT / "notebooks", "elsewhere": tmp_path}[where]
    notebook = ROOT / "notebooks" / "01_data.ipynb"
    out = tmp_path / f"out-{where}.ipynb"
    before = _tree(ROOT)
    env = _environ(**{paths.OUTPUTS_ENV: str(outputs), "TQDM_DISABLE": "1"})
    done = subprocess.run([PAPERMILL, os.path.relpath(notebook, cwd), os.path.relpath(out, cwd)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _tree(ROOT) == before, "papermill wrote into the repository outside outputs/"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # nothing in the caller's folder
    assert (outputs / "nbval" / "data" / "tiny" / "train.h5").is_file()
    assert (outputs / "logs" / "kernel.log").is_file()
    records = read_records(out)
    assert records["data_dir"] == str(outputs / "nbval" / "data" / "tiny")


@slow
def test_papermill_trains_from_the_root_as_the_issue_shows(outputs, tmp_path):
    # `papermill notebooks/03_training.ipynb out.ipynb -p epochs 3`, from the repository's root
    before = _tree(ROOT)
    out = tmp_path / "03.ipynb"
    env = _environ(**{paths.OUTPUTS_ENV: str(outputs), "TQDM_DISABLE": "1"})
    done = subprocess.run([PAPERMILL, "notebooks/03_training.ipynb", str(out), "-p", "epochs", "3",
                           "-p", "max_train_clips", "10", "-p", "max_valid_clips", "4"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _tree(ROOT) == before
    run = outputs / "nbval" / "run"
    history = json.loads((run / "history.json").read_text())
    assert len(history["val_mpjpe"]) == 3 and (run / "model.keras").is_file()
    assert json.loads((run / "progress.json").read_text())["phase"] == "done"


# ----------------------------------------------------------------------------- progress of long cells


def test_the_sweep_follows_the_run_training_in_another_kernel(tmp_path):
    """Notebook 05's sweep shows the steps of the run that trains in papermill's kernel, read from the
    run's progress.json (training.runfolder.ProgressFile), at least every second."""
    import io

    from tqdm import tqdm

    from pose_course.sweep import _follow
    from pose_utils.training.runfolder import ProgressFile

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "progress.json").write_text('{"phase": "done"}')  # a previous run's: must not count
    bar = tqdm(total=1, file=io.StringIO())
    tracker = ProgressFile(run_dir, epochs=2, interval=0.2)
    with _follow(run_dir, bar, "bs5", interval=0.1):
        assert not (run_dir / "progress.json").exists()
        tracker.update(1, "train", 3, 10, force=True)
        time.sleep(0.6)
        assert (bar.n, bar.total, bar.desc.rstrip(": ")) == (3, 10, "bs5: epoch 1/2 train")
        tracker.update(1, "train", 4, 10)  # within the interval: not written
        tracker.update(2, "validate", 1, 2, force=True)
        time.sleep(0.6)
        assert (bar.n, bar.total, bar.desc.rstrip(": ")) == (1, 2, "bs5: epoch 2/2 validate")
    assert json.loads((run_dir / "progress.json").read_text())["epoch"] == 2
