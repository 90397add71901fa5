"""The one trusted way out of a sandboxed run: a Unix socket that accepts one connection.

Why not a signed file: whatever key signs it would have to be inside the sandbox, and every process of
the sandbox can read every other one's environment and files (bwrap, its pid 1, keeps its environment).
Instead the grader listens on a socket that it alone created, in a folder of its own bound read-only
into the sandbox. grading/plugin.py connects when pytest (or the papermill script) imports it, before any
code of the submission has started; the grader then stops listening and removes the socket, so no later
process can connect. The plugin's end lives only in that process, which makes itself non-dumpable: no
other process of the sandbox can reach its descriptors or memory through /proc or ptrace. Files the run
leaves behind (report.xml) are only compared with what came through here.

Messages are JSON objects, one a line. The grader reads at most `limit` bytes; past that it reads and
drops the rest (`overflow`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import struct
import tempfile
import threading
from pathlib import Path

from pose_course.instructor.grading.host_identity import HostIdentity
from pose_course.instructor.grading.sandbox import MiB

# The variable the plugin finds the socket's path in; grading/plugin.py spells the same name out.
CHANNEL_VAR = "POSE_UTILS_GRADER_CHANNEL"


class Channel:
    """The grader's end: `with Channel(who) as ch:` run the sandbox with ch.folder exposed and
    {CHANNEL_VAR: ch.path} in its environment, then read `ch.messages()`."""

    def __init__(self, who: HostIdentity | None, limit: int = 32 * MiB):
        # under /tmp: a socket's path must stay within 107 bytes, and the sandbox's /tmp is private anyway
        self.folder = Path(tempfile.mkdtemp(prefix="pose-utils-channel-"))
        os.chmod(self.folder, 0o711)  # the sandbox may reach the socket, not list or change the folder
        self.path = self.folder / "socket"
        self.limit = limit
        self.overflow = False
        self.peer_uid: int | None = None
        self._uid = who.uid if who is not None else os.getuid()
        self._data = bytearray()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(1)
        self._listener.settimeout(0.2)
        if who is not None:
            os.chown(self.path, who.uid, who.gid)
        os.chmod(self.path, 0o600)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn = None
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                self.peer_uid = struct.unpack("3i", creds)[1]
                if self.peer_uid != self._uid:  # not the sandbox's uid: never listened to
                    conn.close()
                    conn = None
                    continue
                break
        finally:
            self._close_listener()
        if conn is None:
            return
        with conn:
            conn.settimeout(0.5)
            while True:
                try:
                    chunk = conn.recv(1 << 16)
                except TimeoutError:
                    if self._stop.is_set():
                        return
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                if len(self._data) + len(chunk) > self.limit:
                    self.overflow = True
                    chunk = chunk[: max(0, self.limit - len(self._data))]
                self._data += chunk

    def _close_listener(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def close(self, wait: float = 10.0) -> None:
        """Once the run is over: stop listening, read what is left until the writer's end closes (or half
        a second passes without data, or `wait` seconds in all), and remove the folder."""
        self._stop.set()
        self._thread.join(timeout=wait)
        self._close_listener()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def messages(self) -> list[dict]:
        """The JSON objects received, in order (a last line cut short by the limit is left out)."""
        found = []
        for line in bytes(self._data).splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    found.append(item)
        return found
