"""Who a sandboxed run is on the host, and what that uid can reach (sandbox's module doc).

A grader that is a normal user runs bwrap as itself: bwrap maps the sandbox's uid to that user. A grader
started as root gives each run a fresh unprivileged uid (`new_identity`) and starts bwrap through
sandbox_prelude.py (`prelude`), which drops to that uid; `plan_binds` says which folders the prelude must
cover so the uid reaches every bind source, `unreadable` which files it could not read, and `give` hands
the run its work folder.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pwd
import secrets
import stat
import sys
import threading
from pathlib import Path

from pose_utils.errors import ConfigError

# Host uids for runs of a grader started as root: in the range systemd leaves unused (above its container
# ranges, below 2^31), one per run, starting at a random offset so two graders at once rarely meet.
UID_BASE = 2_100_000_000
UID_SPAN = 40_000_000
PRELUDE = Path(__file__).with_name("sandbox_prelude.py")


@dataclasses.dataclass(frozen=True)
class HostIdentity:
    """The unprivileged host uid and gid one sandboxed run of a root grader gets (see the module doc)."""

    uid: int
    gid: int


_next_uid = itertools.count(UID_BASE + secrets.randbelow(UID_SPAN // 2))
_uid_lock = threading.Lock()


def new_identity() -> HostIdentity | None:
    """A fresh host uid and gid for one run when the grader is root (no account has them); None for a
    grader that is a normal user, whose own uid the sandbox maps to."""
    if os.geteuid() != 0:
        return None
    with _uid_lock:
        for uid in _next_uid:
            if uid >= UID_BASE + UID_SPAN:
                raise ConfigError(f"no free sandbox uid left in {UID_BASE}..{UID_BASE + UID_SPAN}")
            try:
                pwd.getpwuid(uid)
            except KeyError:
                return HostIdentity(uid, uid)
    raise AssertionError("unreachable")


def _searchable(path: Path, who: HostIdentity) -> bool:
    """Whether `who` may pass through the folder `path` (its x bit for owner, group or others)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_uid == who.uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid == who.gid:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def _blocked_at(path: Path, who: HostIdentity) -> Path | None:
    """The topmost folder above `path` that `who` cannot pass through, or None."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not _searchable(parent, who):
            return parent
    return None


def unreadable(paths) -> Path | None:
    """The first file or folder under `paths` that a uid other than its owner's cannot read (a file
    without o+r, a folder without o+rx), or None. Symbolic links are not followed."""
    def bad(st):
        need = 0o005 if stat.S_ISDIR(st.st_mode) else 0o004
        return not stat.S_ISLNK(st.st_mode) and (st.st_mode & need) != need

    for root in map(Path, paths):
        try:
            if bad(os.stat(root)):
                return root
        except OSError:
            continue
        for here, dirs, files in os.walk(root):
            for name in dirs + files:
                full = os.path.join(here, name)
                try:
                    if bad(os.lstat(full)):
                        return Path(full)
                except OSError:
                    continue
    return None


def give(path: Path, who: HostIdentity) -> None:
    """Make `who` the owner of the work folder and everything in it (the run writes there)."""
    os.lchown(path, who.uid, who.gid)
    for here, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(here, name), who.uid, who.gid)


def prelude(who: HostIdentity, covers: list, sources: list) -> list[str]:
    spec = {"uid": who.uid, "gid": who.gid, "covers": [str(c) for c in covers],
            "sources": [str(s) for s in sources]}
    return [sys.executable, "-I", str(PRELUDE), json.dumps(spec), "--"]


def inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def plan_binds(work: Path, expose: list, who: HostIdentity | None):
    """(covers, sources, mountable): for a root grader, the folders the prelude covers so that `who`
    reaches every bind source (the work folder and the exposed paths), and a test for whether a hidden
    path can be mounted on once it has. A grader that is a normal user needs no prelude."""
    sources = sorted({work, *(p for p in expose if p.exists())}, key=lambda p: len(p.parts))
    if who is None:
        return [], sources, lambda path: path.exists()
    covers = sorted({b for b in (_blocked_at(p, who) for p in sources) if b is not None})

    def staged(path: Path) -> bool:  # exists in the prelude's view, on a path `who` can walk
        cover = next((c for c in covers if inside(path, c)), None)
        if cover is not None and path != cover:
            return any(inside(s, path) for s in sources)
        return path.exists() and (cover is not None or _blocked_at(path, who) is None)

    return covers, sources, staged
