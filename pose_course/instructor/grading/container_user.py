"""The weaker isolation for a throwaway container (Gradescope's): an unprivileged uid, no namespaces.

Docker's default seccomp and AppArmor profiles refuse the namespaces bubblewrap needs, so
pose_course.instructor.grading.sandbox cannot run in Gradescope's container. This mode (`grade --isolation
container-user`, never the default) keeps what needs no namespace: each run drops from root to a fresh
uid no account has (host_identity.new_identity) with no groups, no capabilities and no new privileges
(setpriv), under the same rlimits (prlimit: memory, CPU, file size, and processes, which hold for a uid
other than 0); when it ends, every process of that uid is killed, whatever session it moved to. Secrets
are kept from it by file modes alone: the instructor's notebooks and hidden data must lie under a folder
other users cannot pass through (the bundle's setup.sh makes /autograder/source 0700). Everything else
other users may read on the machine, the run may read, and it has the container's network:
docs/assignment.md ("Gradescope") compares it with bubblewrap. One submission per container only.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from pose_course.instructor.grading.host_identity import HostIdentity, new_identity
from pose_utils.errors import ConfigError

NAME = "container-user"
_DROP = ["setpriv", "--clear-groups", "--no-new-privs", "--inh-caps=-all"]
# Run as the run's uid: kill(-1) reaches every process that uid owns (and never the caller itself).
_KILL = ("import os, signal, sys\nuid, gid = int(sys.argv[1]), int(sys.argv[2])\nos.setgroups([])\n"
         "os.setresgid(gid, gid, gid)\nos.setresuid(uid, uid, uid)\n"
         "try:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\n")


def drop(who: HostIdentity, cwd: Path) -> list[str]:
    """The argv prefix that runs the rest as `who` in `cwd`: setpriv drops root, env changes folder."""
    return [*_DROP, f"--reuid={who.uid}", f"--regid={who.gid}", "--", "env", "-C", str(cwd)]


def unavailable() -> str | None:
    """None when runs can drop to an unprivileged uid here, else one line saying why not."""
    if os.geteuid() != 0:
        return (f"--isolation {NAME} needs root (it runs each submission as a fresh unprivileged uid); "
                "as a normal user, grade with bubblewrap")
    missing = [tool for tool in ("setpriv", "prlimit", "env") if shutil.which(tool) is None]
    if missing:
        return f"--isolation {NAME}: {', '.join(missing)} not found (install util-linux and coreutils)"
    who = new_identity()
    try:
        done = subprocess.run([*drop(who, Path("/")), "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"--isolation {NAME}: setpriv could not start ({e})"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"--isolation {NAME}: could not drop to an unprivileged uid ({why})"
    return None


def kill_all(who: HostIdentity) -> None:
    """SIGKILL every process of `who`: the daemons and kernels a run started in sessions of their own
    outlive its process group, and no PID namespace takes them along here."""
    subprocess.run([sys.executable, "-I", "-c", _KILL, str(who.uid), str(who.gid)], timeout=30,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _passable(folder: Path) -> bool:
    """Whether a uid that owns nothing here may pass through `folder` (its x bit for others)."""
    try:
        return bool(os.stat(folder).st_mode & stat.S_IXOTH)
    except OSError:
        return False


def closed_at(path: Path) -> Path | None:
    """The topmost folder from / down to `path` itself that other users cannot pass through, or None."""
    for folder in [*reversed(path.parents), path]:
        if folder.is_dir() and not _passable(folder):
            return folder
    return None


def check_reachable(path: Path) -> None:
    """ConfigError unless the runs' uid can reach `path` (a work folder, the Python the runs start): no
    mount can bring it to them here, as bubblewrap's prelude does."""
    blocked = next((p for p in reversed(Path(path).parents) if not _passable(p)), None)
    if blocked is not None:
        raise ConfigError(f"{blocked}: other users cannot pass through it, so a run under --isolation "
                          f"{NAME} cannot reach {path}; use a Python and an output folder every user can "
                          "reach (chmod o+x), as in the Gradescope image")


def check_batch(submissions: list, secrets: list, needed: list) -> None:
    """ConfigError unless the batch is one submission, every secret (the instructor's notebooks, the
    hidden data) lies under a folder other users cannot pass through (file modes are all that hide them)
    and the runs can reach every `needed` path (the grader's Python)."""
    if len(submissions) != 1:
        raise ConfigError(f"--isolation {NAME} grades one submission per container (got {len(submissions)}): "
                          "the runs could read each other's files")
    for secret in secrets:
        if closed_at(Path(secret)) is None:
            raise ConfigError(f"{secret}: every user can reach it, and a run under --isolation {NAME} could "
                              "read the hidden checks or labels there; make a folder above it 0700 (setup.sh "
                              "of the Gradescope bundle does: chmod 700 /autograder/source)")
    for path in needed:
        check_reachable(Path(path) / "x")
