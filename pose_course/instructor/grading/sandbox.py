"""Run one command of one untrusted submission under bubblewrap, with resource limits.

`run(command, work_dir, ...)` starts `prlimit ... -- bwrap ... -- command` and returns a `Result`. Inside:

- the whole filesystem is bound read-only; only `work_dir` (the submission's own folder) is writable;
  /tmp and /dev/shm are private, size-capped tmpfs mounts that vanish with the sandbox;
- the `hide` paths (the instructor's repository, the grading output folder, the other submissions, the
  caller's home) are covered by empty read-only tmpfs mounts, except what `expose` binds back read-only
  (the grader's Python, data folders) and `work_dir`;
- new user, PID, network, IPC, UTS and cgroup namespaces: no network at all (a private loopback only),
  no view of the host's processes; the sandbox runs as uid 65534 with every capability dropped and no
  further user namespaces, so it cannot remount or unmount what hides the instructor's files (as uid 0
  inside its own namespace it could); /run (the host's sockets) is hidden too;
- who that uid is on the host: bwrap maps it to the uid that started bwrap. A grader started by a normal
  user runs bwrap as that user. A grader started as root never does: each run gets a fresh unprivileged
  uid of its own (pose_course.instructor.grading.host_identity: from UID_BASE up, one no account uses) and
  sandbox_prelude.py drops to it before bwrap starts, so the sandbox reads only what
  `nobody` can read (not /etc/shadow), RLIMIT_NPROC holds (the kernel exempts uid 0 alone), and two runs
  at once cannot signal each other;
- limits: wall clock (the outer bwrap is killed; its PID namespace dies with it, and with it every
  process the submission started, daemons and Jupyter kernels in their own sessions included), address
  space (RLIMIT_AS: an allocation beyond it fails with MemoryError in Python), CPU seconds per process,
  size of any one written file, number of processes and threads (RLIMIT_NPROC, counted per host uid);
- stdout and stderr go through pipes into files, each cut at `Limits.output_bytes`; the rest is read and
  dropped (never held in memory) so the command never blocks on a full pipe;
- the environment is only what `environment()` builds (PATH, HOME and TMPDIR inside the work folder,
  quiet TensorFlow / matplotlib / tqdm, PYTHONNOUSERSITE=1, TensorFlow's oneDNN switch).

Without bwrap (or where the kernel refuses unprivileged namespaces) `require()` raises ConfigError with one
line saying what to install or allow: grading never falls back to running a submission unisolated, nor
with more rights than an unprivileged user.

The grader's own side of untrusted files (unpacking, copying, reading back, removing) is
pose_course.instructor.grading.untrusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pose_course.instructor.grading import container_user
from pose_course.instructor.grading.host_identity import (
    HostIdentity,
    give,
    inside,
    new_identity,
    plan_binds,
    prelude,
)
from pose_utils.errors import ConfigError

GiB = 1024**3
MiB = 1024**2
SANDBOX_UID = 65534  # "nobody": any uid but 0 makes bwrap drop every capability inside
# What Python, glibc and TensorFlow print when an allocation fails under RLIMIT_AS (no signal says so).
MEMORY_MARKERS = (b"MemoryError", b"std::bad_alloc", b"Cannot allocate memory", b"OOM when allocating")
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; "
                "Fedora: dnf install bubblewrap)")
# The isolation modes: bubblewrap, the default; container_user's weaker one, only when asked for.
BUBBLEWRAP = "bubblewrap"
ISOLATIONS = (BUBBLEWRAP, container_user.NAME)
# Variables passed through from the grader's environment when set.
KEPT_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "POSE_UTILS_TF_DEFAULTS")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Limits of one sandboxed command. cpu_seconds None: twice the wall clock (two busy threads)."""

    wall_seconds: float = 900.0
    memory_bytes: int = 8 * GiB
    cpu_seconds: int | None = None
    output_bytes: int = 2 * MiB  # per stream
    file_bytes: int = 1 * GiB  # largest file the command may write
    processes: int = 1024  # threads count too; TensorFlow starts dozens per process
    tmp_bytes: int = 256 * MiB  # each of the private /tmp and /dev/shm

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and not value > 0:
                raise ConfigError(f"sandbox limit {field.name} must be positive, got {value}")


@dataclasses.dataclass
class Result:
    """What became of one sandboxed command. returncode: the command's exit status (128 + N when a
    signal N ended it; None when it was killed at the wall-clock limit)."""

    returncode: int | None
    timed_out: bool
    memory_exceeded: bool
    cpu_exceeded: bool
    output_truncated: bool
    seconds: float
    stdout: str
    stderr: str
    stdout_bytes: int  # produced, including what was dropped
    stderr_bytes: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """None when bwrap can build the sandbox here, else one line saying why not and what to do."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return f"bwrap not found: {INSTALL_HINT}; submissions are never run unisolated"
    if shutil.which("prlimit") is None:
        return "prlimit not found: install util-linux"
    probe = [bwrap, *_namespace_args(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    who = new_identity()
    if who is not None:  # as root: the probe drops to an unprivileged uid first, as every run does
        probe = prelude(who, [], []) + probe
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap could not start ({e})"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return (f"bwrap cannot create its namespaces as an unprivileged user here ({why}): allow "
                "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1; Ubuntu 24.04: "
                "sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for bwrap; "
                "in Docker: --security-opt seccomp=unconfined); submissions never run with root's rights")
    return None


def require(isolation: str = BUBBLEWRAP) -> None:
    """Raise ConfigError (one line) unless sandboxed runs with `isolation` are possible here."""
    if isolation not in ISOLATIONS:
        raise ConfigError(f"--isolation {isolation!r}: expected one of {', '.join(ISOLATIONS)}")
    reason = unavailable() if isolation == BUBBLEWRAP else container_user.unavailable()
    if reason:
        raise ConfigError(reason)


@functools.lru_cache(maxsize=1)
def _bwrap_options() -> frozenset:
    try:
        text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(word for word in text.split() if word.startswith("--"))


def _namespace_args() -> list[str]:
    args = ["--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
    if "--disable-userns" in _bwrap_options():  # bubblewrap >= 0.8
        args.append("--disable-userns")
    return args


def environment(home: str | os.PathLike, tmpdir: str | os.PathLike, extra: dict | None = None) -> dict:
    """The whole environment of a sandboxed command: nothing of the grader's but KEPT_VARIABLES."""
    home = str(home)
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home,
        "TMPDIR": str(tmpdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",  # set and dict orders print the same on every run: the same grade twice
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "agg",
        "MPLCONFIGDIR": os.path.join(home, ".config", "matplotlib"),
        "TQDM_DISABLE": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        # the kernels' C++ notices (course/lab.py) stay in the work folder, never in the instructor's outputs/
        "POSE_UTILS_KERNEL_LOG": os.path.join(home, "kernel.log"),
    }
    env.update({k: os.environ[k] for k in KEPT_VARIABLES if k in os.environ})
    env.update(extra or {})
    return env


def python_roots() -> set[Path]:
    """The running Python's installation and environment: what every sandboxed command runs on, so they
    are always readable inside, even under the private /tmp (a checkout in /tmp with its .venv)."""
    return {Path(p).resolve() for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)}


# Hidden in every sandbox: the host's runtime sockets (a container engine's, D-Bus) are nobody's business.
ALWAYS_HIDDEN = ("/run",)


def command_line(command, work_dir, cwd=None, hide=(), expose=(), limits: Limits = Limits(),
                 who: HostIdentity | None = None, isolation: str = BUBBLEWRAP) -> list[str]:
    """The full argv: for a root grader the prelude that drops to `who`, then prlimit's limits, then
    bwrap's mounts in the order that makes them work (tmpfs over hidden folders, read-only binds back into
    them, the work folder, then the hidden tmpfs mounts made read-only; `--remount-ro` is not recursive,
    so the binds inside keep their own mode). The running Python (`python_roots`) is exposed whatever
    `expose` says. With container_user's isolation: its drop to `who`, then prlimit, no bwrap."""
    work = Path(work_dir).resolve()
    expose = sorted({Path(p).resolve() for p in [*expose, *python_roots()]}, key=lambda p: len(p.parts))
    covers, sources, mountable = plan_binds(work, expose, who)
    cpu = int(limits.cpu_seconds or max(1, 2 * limits.wall_seconds))
    limited = ["prlimit", f"--as={limits.memory_bytes}", f"--cpu={cpu}:{cpu + 5}",
               f"--fsize={limits.file_bytes}", f"--nproc={limits.processes}", "--core=0", "--"]
    if isolation == container_user.NAME:
        return [*container_user.drop(who, Path(cwd).resolve() if cwd else work), *limited, *map(str, command)]
    argv = prelude(who, covers, sources) if who is not None else []
    argv += [*limited, "bwrap", *_namespace_args(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    sized = "--size" in _bwrap_options()
    for private in ("/tmp", "/dev/shm"):
        argv += (["--size", str(limits.tmp_bytes)] if sized else []) + ["--tmpfs", private]
    hidden: list[Path] = []
    for raw in sorted({Path(p).resolve() for p in [*hide, *ALWAYS_HIDDEN]}, key=lambda p: len(p.parts)):
        if raw == Path("/") or not mountable(raw) or inside(raw, Path("/tmp")):
            continue  # nothing to hide, out of the sandbox's reach already, or under the private /tmp
        if any(inside(raw, h) for h in hidden):
            continue
        if raw.is_dir():
            argv += ["--tmpfs", str(raw)]
            hidden.append(raw)
        else:
            argv += ["--ro-bind", "/dev/null", str(raw)]
    for path in expose:
        if path.exists() and (inside(path, Path("/tmp")) or any(inside(path, h) for h in hidden)):
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(work), str(work)]
    for h in hidden:
        argv += ["--remount-ro", str(h)]
    argv += ["--chdir", str(Path(cwd).resolve() if cwd else work), "--", *map(str, command)]
    return argv


def _pump(fd: int, out, cap: int, counts: dict, key: str) -> None:
    """Copy a pipe into the file `out` up to `cap` bytes; read and drop the rest until every writer is
    gone."""
    total = 0
    with out:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if total < cap:
                out.write(chunk[: cap - total])
            total += len(chunk)
    counts[key] = total


def _seen(path: Path, markers) -> bool:
    with open(path, "rb") as f:  # at most Limits.output_bytes
        text = f.read()
    return any(m in text for m in markers)


def run(command, work_dir, *, cwd=None, env: dict | None = None, hide=(), expose=(),
        limits: Limits = Limits(), stdout_path=None, stderr_path=None,
        cancel: threading.Event | None = None, who: HostIdentity | None = None,
        isolation: str = BUBBLEWRAP) -> Result:
    """Run `command` (a list) in the sandbox; `work_dir` is the only writable folder (see module doc).

    env: the complete environment (default: `environment(work_dir/home, work_dir/tmp)`).
    stdout_path, stderr_path: where the grader writes the streams (default: beside work_dir, NAME.stdout.log
    and NAME.stderr.log); keep them out of work_dir. cancel: an Event that stops the command early (killed
    as at the wall-clock limit, returncode 137). who: the host uid of a root grader's run (default: a
    fresh one, `new_identity()`); it is given work_dir and everything in it. isolation: BUBBLEWRAP, or
    container_user.NAME where bwrap cannot run (that module's doc says what it does not protect).
    """
    require(isolation)
    work = Path(work_dir).resolve()
    if not work.is_dir():
        raise ConfigError(f"{work}: sandbox work folder not found")
    stdout_path = Path(stdout_path or work.parent / f"{work.name}.stdout.log")
    stderr_path = Path(stderr_path or work.parent / f"{work.name}.stderr.log")
    if env is None:
        (work / "home").mkdir(exist_ok=True)
        (work / "tmp").mkdir(exist_ok=True)
        env = environment(work / "home", work / "tmp")
    who = who or new_identity()
    if who is not None:
        give(work, who)
    if isolation == container_user.NAME:
        container_user.check_reachable(work)
    argv = command_line(command, work, cwd=cwd, hide=hide, expose=expose, limits=limits, who=who,
                        isolation=isolation)
    counts: dict = {}
    tic = time.monotonic()
    # opened before the command starts, so nothing it does can put a symlink there first; the pumps close
    files = [open(stdout_path, "wb"), open(stderr_path, "wb")]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, start_new_session=True, close_fds=True)
    except BaseException:
        for f in files:
            f.close()
        raise
    streams = ((proc.stdout, files[0], "stdout"), (proc.stderr, files[1], "stderr"))
    pumps = [threading.Thread(target=_pump, args=(stream.fileno(), out, limits.output_bytes, counts, key),
                              daemon=True) for stream, out, key in streams]
    for t in pumps:
        t.start()
    timed_out = False
    deadline = tic + limits.wall_seconds
    try:
        while proc.poll() is None and not (cancel is not None and cancel.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(left, 0.25))
    finally:
        if proc.poll() is None:  # timed out, cancelled, or the grader itself is being interrupted
            # bwrap leads its own process group; its PID namespace's init gets SIGKILL when it dies
            # (--die-with-parent), and the namespace takes every process in it along.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if isolation == container_user.NAME:  # no PID namespace ends what left the process group
            container_user.kill_all(who)
        for t in pumps:
            t.join(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    seconds = time.monotonic() - tic
    code = None if timed_out else proc.returncode
    if code is not None and code < 0:
        code = 128 - code  # killed by a signal before bwrap could report it: shell convention
    out_bytes, err_bytes = counts.get("stdout", 0), counts.get("stderr", 0)
    return Result(
        returncode=code,
        timed_out=timed_out,
        memory_exceeded=_seen(stdout_path, MEMORY_MARKERS) or _seen(stderr_path, MEMORY_MARKERS),
        cpu_exceeded=code == 128 + signal.SIGXCPU,
        output_truncated=max(out_bytes, err_bytes) > limits.output_bytes,
        seconds=round(seconds, 2),
        stdout=str(stdout_path),
        stderr=str(stderr_path),
        stdout_bytes=out_bytes,
        stderr_bytes=err_bytes,
    )
