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
  inside its own namespace it could);
- limits: wall clock (the outer bwrap is killed; its PID namespace dies with it, and with it every
  process the submission started, daemons and Jupyter kernels in their own sessions included), address
  space (RLIMIT_AS: an allocation beyond it fails with MemoryError in Python), CPU seconds per process,
  size of any one written file, number of processes (not enforced for root: the kernel exempts uid 0);
- stdout and stderr go through pipes into files, each cut at `Limits.output_bytes`; the rest is read and
  dropped (never held in memory) so the command never blocks on a full pipe;
- the environment is only what `environment()` builds (PATH, HOME and TMPDIR inside the work folder,
  quiet TensorFlow / matplotlib / tqdm, PYTHONNOUSERSITE=1, TensorFlow's oneDNN switch).

Without bwrap (or where the kernel refuses unprivileged namespaces) `require()` raises ConfigError with one
line saying what to install or allow: grading never falls back to running a submission unisolated.

The grader's own side of untrusted files: `unzip_safely` and `copy_tree` bring a submission in (no
absolute or `..` paths, no symlinks, size and count caps; `Rejected` says why not), `read_back` reads what a
sandboxed run wrote without following a symlink it planted, `remove_tree` deletes a work folder whatever
modes the submission gave its files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

from ..errors import ConfigError

GiB = 1024**3
MiB = 1024**2
SANDBOX_UID = 65534  # "nobody": any uid but 0 makes bwrap drop every capability inside
# What Python, glibc and TensorFlow print when an allocation fails under RLIMIT_AS (no signal says so).
MEMORY_MARKERS = (b"MemoryError", b"std::bad_alloc", b"Cannot allocate memory", b"OOM when allocating")
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; "
                "Fedora: dnf install bubblewrap)")
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
    processes: int = 4096  # threads count too; TensorFlow starts dozens per process
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
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap could not start ({e})"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return (f"bwrap cannot create its namespaces here ({why}): allow unprivileged user namespaces "
                "(Ubuntu 24.04: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor "
                "profile for bwrap) or run the grader as root")
    return None


def require() -> None:
    """Raise ConfigError (one line) unless sandboxed runs are possible here."""
    reason = unavailable()
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
    }
    env.update({k: os.environ[k] for k in KEPT_VARIABLES if k in os.environ})
    env.update(extra or {})
    return env


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def python_roots() -> set[Path]:
    """The running Python's installation and environment: what every sandboxed command runs on, so they
    are always readable inside, even under the private /tmp (a checkout in /tmp with its .venv)."""
    return {Path(p).resolve() for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)}


def command_line(command, work_dir, cwd=None, hide=(), expose=(), limits: Limits = Limits()) -> list[str]:
    """The full argv: prlimit's limits, then bwrap's mounts in the order that makes them work (tmpfs
    over hidden folders, read-only binds back into them, the work folder, then the hidden tmpfs mounts
    made read-only; `--remount-ro` is not recursive, so the binds inside keep their own mode). The
    running Python (`python_roots`) is exposed whatever `expose` says."""
    work = Path(work_dir).resolve()
    expose = [*expose, *python_roots()]
    cpu = int(limits.cpu_seconds or max(1, 2 * limits.wall_seconds))
    argv = ["prlimit", f"--as={limits.memory_bytes}", f"--cpu={cpu}:{cpu + 5}",
            f"--fsize={limits.file_bytes}", f"--nproc={limits.processes}", "--core=0", "--",
            "bwrap", *_namespace_args(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    sized = "--size" in _bwrap_options()
    for private in ("/tmp", "/dev/shm"):
        argv += (["--size", str(limits.tmp_bytes)] if sized else []) + ["--tmpfs", private]
    hidden: list[Path] = []
    for raw in sorted({Path(p).resolve() for p in hide}, key=lambda p: len(p.parts)):
        if raw == Path("/") or not raw.exists() or _inside(raw, Path("/tmp")):
            continue  # nothing to hide, or already under the private /tmp
        if any(_inside(raw, h) for h in hidden):
            continue
        if raw.is_dir():
            argv += ["--tmpfs", str(raw)]
            hidden.append(raw)
        else:
            argv += ["--ro-bind", "/dev/null", str(raw)]
    for path in sorted({Path(p).resolve() for p in expose}, key=lambda p: len(p.parts)):
        if path.exists() and (_inside(path, Path("/tmp")) or any(_inside(path, h) for h in hidden)):
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
        cancel: threading.Event | None = None) -> Result:
    """Run `command` (a list) in the sandbox; `work_dir` is the only writable folder (see module doc).

    env: the complete environment (default: `environment(work_dir/home, work_dir/tmp)`).
    stdout_path, stderr_path: where the grader writes the streams (default: beside work_dir, NAME.stdout.log
    and NAME.stderr.log); keep them out of work_dir. cancel: an Event that stops the command early (killed
    as at the wall-clock limit, returncode 137).
    """
    require()
    work = Path(work_dir).resolve()
    if not work.is_dir():
        raise ConfigError(f"{work}: sandbox work folder not found")
    stdout_path = Path(stdout_path or work.parent / f"{work.name}.stdout.log")
    stderr_path = Path(stderr_path or work.parent / f"{work.name}.stderr.log")
    if env is None:
        (work / "home").mkdir(exist_ok=True)
        (work / "tmp").mkdir(exist_ok=True)
        env = environment(work / "home", work / "tmp")
    argv = command_line(command, work, cwd=cwd, hide=hide, expose=expose, limits=limits)
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


# ----------------------------------------------------------------------------- untrusted files, grader's side


class Rejected(Exception):
    """A submission that cannot be graded: `code` goes to grades.csv, the message to feedback.md."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _member_parts(name: str) -> list[str] | None:
    """The path components of a zip member, or None when it could land outside the folder."""
    if "\x00" in name or name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return None
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return None if ".." in parts else parts


def unzip_safely(archive: str | os.PathLike, dest: str | os.PathLike, max_bytes: int, max_files: int,
                 skip=frozenset()) -> None:
    """Unpack `archive` into the folder `dest`, refusing (Rejected, before writing anything) absolute
    or `..` member names, symlinks, encrypted members and more than `max_files` members or `max_bytes`;
    the bytes are counted again while unpacking, since a zip's stated sizes can lie."""
    archive, dest = Path(archive), Path(dest)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise Rejected("not_a_repository", f"{archive.name}: not a readable .zip file ({e})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_files:
            raise Rejected("too_large", f"{archive.name}: {len(infos)} members, more than {max_files}")
        for info in infos:
            if _member_parts(info.filename) is None:
                raise Rejected("unsafe_zip", f"{archive.name}: member {info.filename!r} has an absolute or "
                                             "'..' path; nothing was unpacked")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise Rejected("unsafe_zip", f"{archive.name}: member {info.filename!r} is a symbolic link; "
                                             "nothing was unpacked")
            if info.flag_bits & 0x1:
                raise Rejected("unsafe_zip", f"{archive.name}: member {info.filename!r} is encrypted")
        if sum(i.file_size for i in infos) > max_bytes:
            raise Rejected("too_large", f"{archive.name}: unpacks to more than {max_bytes} bytes")
        dest.mkdir(parents=True, exist_ok=True)
        written = 0
        for info in infos:
            parts = _member_parts(info.filename)
            if not parts or parts[0] in skip:
                continue
            target = dest.joinpath(*parts)
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:
                            raise Rejected("too_large", f"{archive.name}: unpacks to more than {max_bytes} "
                                                        "bytes")
                        out.write(chunk)
            except (OSError, zipfile.BadZipFile, RuntimeError) as e:
                raise Rejected("not_a_repository", f"{archive.name}: member {info.filename!r} could not be "
                                                   f"unpacked ({e})") from None


def copy_tree(src: str | os.PathLike, dst: str | os.PathLike, max_bytes: int, max_files: int,
              skip=frozenset()) -> list[str]:
    """Copy the folder `src` into `dst` (created): regular files and folders only, never following a
    symlink, without the folders named in `skip`; Rejected("too_large") past `max_bytes` or `max_files`.
    Returns the relative paths of the symlinks and special files it left out."""
    src, dst = Path(src), Path(dst)
    left_out, total, files = [], 0, 0
    stack = [(src, dst)]
    dst.mkdir(parents=True, exist_ok=True)
    while stack:
        here, there = stack.pop()
        with os.scandir(here) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                target = there / entry.name
                if entry.is_symlink():
                    left_out.append(str(Path(entry.path).relative_to(src)))
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name not in skip:
                        target.mkdir()
                        stack.append((Path(entry.path), target))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                    files += 1
                    if total > max_bytes or files > max_files:
                        raise Rejected("too_large", f"{src.name}: more than {max_bytes} bytes or {max_files} "
                                                    "files (virtual environments and .git are not counted)")
                    shutil.copyfile(entry.path, target, follow_symlinks=False)
                else:
                    left_out.append(str(Path(entry.path).relative_to(src)))
    return sorted(left_out)



def read_back(folder: Path, *parts: str, limit: int = 64 * MiB) -> bytes | None:
    """A regular file written inside a sandbox folder, or None: no component may be a symlink (the
    submission controls everything below `folder`), no FIFO can block, at most `limit` bytes."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(folder, flags | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part in ("", ".", "..") or "/" in part:
                return None
            nxt = os.open(part, flags | (0 if last else os.O_DIRECTORY), dir_fd=fd)
            os.close(fd)
            fd = nxt
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = f.read(limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def remove_tree(path: Path) -> None:
    """Delete a work folder whatever modes the submission gave its files (never following symlinks)."""
    def retry(func, p, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            if not os.path.islink(p) and os.path.isdir(p):
                os.chmod(p, 0o700)
            func(p)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=retry)
