"""The only part of a sandboxed run that runs as root: give up root before bubblewrap starts.

`python -I sandbox_prelude.py SPEC_JSON -- COMMAND...` (sandbox builds this line when
the grader runs as root; a grader that is a normal user starts bwrap directly). It

1. moves into a mount namespace of its own, every mount private (nothing reaches the host's);
2. makes the run's bind sources reachable by the sandbox's uid: each folder on the way to one that the
   uid could not pass through (a Python under /root, pytest's 0700 folders under /tmp) is covered by an
   empty tmpfs, and the sources are bound back at their own paths from descriptors opened before the
   cover; what else that folder held stays out of reach, as it was;
3. drops to the spec's unprivileged uid and gid (no supplementary groups, no capabilities, no new
   privileges), then executes COMMAND (prlimit ... bwrap ...): bwrap maps the sandbox's uid to that uid
   on the host, so the sandbox reads what `nobody` reads and RLIMIT_NPROC holds (the kernel exempts uid 0
   only).

Standard library only, run from the file with -I: nothing of the submission or the environment loads.
"""

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MS_BIND, MS_NOSUID, MS_NODEV = 0x4000, 1 << 18, 0x1000, 0x2, 0x4
PR_SET_NO_NEW_PRIVS = 38


def _fail(message: str) -> None:
    print(f"sandbox prelude: {message}", file=sys.stderr)
    sys.exit(125)


def _check(result: int, libc, what: str) -> None:
    if result != 0:
        _fail(f"{what}: {os.strerror(ctypes.get_errno())}")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def main(argv: list) -> None:
    if len(argv) < 3 or argv[1] != "--":
        _fail("usage: sandbox_prelude.py SPEC_JSON -- COMMAND...")
    spec = json.loads(argv[0])
    uid, gid = int(spec["uid"]), int(spec["gid"])
    if uid <= 0 or gid <= 0:
        _fail(f"refusing to run as uid {uid}, gid {gid}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    _check(libc.unshare(CLONE_NEWNS), libc, "unshare(CLONE_NEWNS)")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), libc, "making / private")
    covers = spec.get("covers", [])
    sources = {}
    for src in spec.get("sources", []):
        if any(_inside(src, c) for c in covers):
            sources[src] = os.open(src, os.O_PATH | os.O_CLOEXEC)
    for cover in covers:
        _check(libc.mount(b"tmpfs", cover.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
               libc, f"tmpfs over {cover}")
    for src, fd in sorted(sources.items(), key=lambda item: item[0].count("/")):
        os.makedirs(os.path.dirname(src), mode=0o755, exist_ok=True)
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(src, mode=0o755, exist_ok=True)
        elif not os.path.exists(src):
            os.close(os.open(src, os.O_WRONLY | os.O_CREAT, 0o644))
        _check(libc.mount(f"/proc/self/fd/{fd}".encode(), src.encode(), None, MS_BIND | MS_REC, None),
               libc, f"binding {src}")
        os.close(fd)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgroups():
        _fail(f"could not drop to uid {uid}")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), libc, "prctl(PR_SET_NO_NEW_PRIVS)")
    try:
        os.execvp(argv[2], argv[2:])
    except OSError as e:
        _fail(f"{argv[2]}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
