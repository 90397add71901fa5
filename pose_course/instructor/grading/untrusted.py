"""A submission's files, handled on the grader's side (outside the sandbox): unpacking a .zip and copying
a folder without symlinks within size and count limits, reading a file back from a sandbox's folder
without following links, and removing a tree a submission may have made hostile (grade's
docstring says where each is used).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

from pose_course.instructor.grading.sandbox import MiB


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
