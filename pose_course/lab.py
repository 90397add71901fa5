"""JupyterLab for the course: quiet kernels, widgets that survive a reopen, and `make lab` (`pose_utils lab`).

What a student would otherwise see:
- TensorFlow's C++ start-up and tf.data notices ("Could not find cuda drivers", "failed call to cuInit",
  "NodeDef mentions attribute use_unbounded_threadpool"), printed by C++ on file descriptor 2 before
  `TF_CPP_MIN_LOG_LEVEL` is read, which ipykernel forwards into every cell as a pink stderr box.
  `install()` writes an IPython kernel configuration into this environment (`sys.prefix/etc/ipython`,
  read by every ipykernel this environment starts: JupyterLab's, papermill's, nbval's) that stops that
  forwarding and points the kernel's descriptor 2 at a log, `outputs/logs/kernel.log` (or
  `$POSE_UTILS_KERNEL_LOG`; `-` keeps the old behaviour). Python's own warnings and errors still appear
  in the cell, in full; nothing about devices changes, so a GPU machine still finds its GPU.
- "Error displaying widget: model not found" where the scrubbers and progress bars were, after a saved
  notebook is reopened: the widgets' state is not saved by default. `install()` sets JupyterLab's
  `saveState` for this environment (`share/jupyter/lab/settings/overrides.json`), and turns off the news
  and update pop-ups.
- `jupyter lab` refusing to start as root, as it runs in containers: `main` adds `--allow-root` there,
  serves on 127.0.0.1 and prints the URL to open.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
from pathlib import Path

from pose_course.paths import OUTPUTS_ENV, PACKAGE_PARENT, outputs_root, repository_root
from pose_utils.fileio import write_text

KERNEL_LOG_ENV = "POSE_UTILS_KERNEL_LOG"
KERNEL_CONFIG = Path("etc", "ipython", "ipython_kernel_config.py")
LAB_OVERRIDES = Path("share", "jupyter", "lab", "settings", "overrides.json")

# The settings a course environment needs; merged into an existing overrides.json, never replacing it.
OVERRIDES = {
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
}

# Runs at every kernel start, before the kernel exists: standard library only, and a failure here must
# never keep a kernel from starting (a student's broken pose_utils cannot break it either).
KERNEL_CONFIG_TEXT = '''\
# Written by pose_course.lab.install() (`make`); rewritten there, edit that file instead.
# TensorFlow's C++ notices go to a log, not into the notebook's cells (pink stderr boxes);
# Python's warnings and errors still show in the cell. {log_env}=- keeps the C++ notices in the
# cells (to debug TensorFlow itself).
import os as _os

c = get_config()  # noqa: F821
if _os.environ.get("{log_env}") != "-":
    c.IPKernelApp.capture_fd_output = False
    try:
        import time as _time

        _log = _os.environ.get("{log_env}") or _os.path.join(
            _os.environ.get("{outputs_env}") or {outputs!r}, "logs", "kernel.log")
        _os.makedirs(_os.path.dirname(_log), exist_ok=True)
        if _os.path.isfile(_log) and _os.path.getsize(_log) > 20_000_000:
            _os.replace(_log, _log + ".old")
        _fd = _os.open(_log, _os.O_WRONLY | _os.O_CREAT | _os.O_APPEND, 0o644)
        _os.write(_fd, ("\\n== kernel %d started %s in %s\\n" % (
            _os.getpid(), _time.strftime("%Y-%m-%d %H:%M:%S"), _os.getcwd())).encode())
        _os.dup2(_fd, 2)
        _os.close(_fd)
    except Exception:  # an unwritable outputs/: the lines go where the kernel's stderr went
        pass
'''


def kernel_config_text() -> str:
    # baked in at install time, not outputs_root(): a POSE_UTILS_OUTPUTS set while `make` ran must not stick
    root = repository_root()
    outputs = str((root if root is not None else PACKAGE_PARENT) / "outputs")
    return KERNEL_CONFIG_TEXT.format(log_env=KERNEL_LOG_ENV, outputs_env=OUTPUTS_ENV, outputs=outputs)


def kernel_log() -> Path:
    """Where this environment's kernels write their C++ messages (see KERNEL_CONFIG_TEXT)."""
    return Path(os.environ.get(KERNEL_LOG_ENV) or outputs_root() / "logs" / "kernel.log")


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return  # also lets a user who cannot write the environment (a shared one) start JupyterLab
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text)


def install(prefix: str | os.PathLike | None = None) -> list[Path]:
    """Write the kernel configuration and JupyterLab's overrides into the environment at `prefix`."""
    prefix = Path(prefix or sys.prefix)
    config = prefix / KERNEL_CONFIG
    _write_if_changed(config, kernel_config_text())
    overrides_path = prefix / LAB_OVERRIDES
    current = {}
    if overrides_path.is_file():
        try:
            current = json.loads(overrides_path.read_text())
        except (OSError, ValueError):
            current = {}  # not ours to keep if it cannot be read; ours replace it
    for plugin, values in OVERRIDES.items():
        current.setdefault(plugin, {}).update(values)
    _write_if_changed(overrides_path, json.dumps(current, indent=2) + "\n")
    return [config, overrides_path]


def free_port(preferred: int = 8888) -> int:
    """`preferred` if nothing listens on it on 127.0.0.1, else a free port the system picks."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def lab_command(root_dir: Path, port: int, open_browser: bool, extra: list[str] = ()) -> list[str]:
    """The `jupyter lab` command line: 127.0.0.1 only, exactly `port`, root allowed when we are root."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root_dir}",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not open_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root; jupyter refuses without it
    return cmd + list(extra)


def main(args) -> int:
    """`python -m pose_utils lab [--root DIR] [--port N] [--no-browser] [-- JUPYTER_ARGS]`."""
    try:
        install()
    except OSError as e:  # a shared environment this user cannot write: JupyterLab still starts
        print(f"warning: could not write the course's kernel settings into {sys.prefix} ({e}); "
              "TensorFlow's C++ notices may show in the cells", file=sys.stderr)
    root = Path(args.root or repository_root() or Path.cwd()).resolve()
    port = free_port(args.port)
    token = args.token or secrets.token_hex(24)
    start = "lab/tree/notebooks" if (root / "notebooks").is_dir() else "lab"
    env = {**os.environ, "JUPYTER_TOKEN": token}  # not on the command line, where `ps` would show it
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"JupyterLab on {root}\n  open  http://127.0.0.1:{port}/{start}?token={token}\n"
          f"  TensorFlow's C++ messages: {kernel_log()}\n  stop with Ctrl-C", flush=True)
    cmd = lab_command(root, port, open_browser=not args.no_browser, extra=args.jupyter_args)
    # JupyterLab replaces this process: Ctrl-C, `kill` and a closed terminal reach the server itself,
    # and no server outlives a parent that was stopped.
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":  # `python -m pose_course.lab`: install only (the Makefile's step)
    for path in install():
        print(f"wrote {path}")
