"""What a student sees of an error their code raised: the exception's type and message and the frames of
their own code, with the grader's paths taken out (the grader's feedback), or its innermost line (`make
check`, pose_course.checks).

The input is what grading.plugin.error_of sends, or a notebook's error output: {"ename", "evalue",
"traceback"}, the traceback being IPython's list of frame blocks ("Cell In[3], line 2 ...",
"File /path/file.py:6, in f(a) ..."), with or without colours.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The first line of an IPython frame block: a file's (path, line, function) or the cell's.
FRAME = re.compile(r"^(?:File (?P<path>.+?):(?P<line>\d+), in (?P<func>.*)|Cell In\[\d+\], line \d+)")


def strip_colours(text) -> str:
    """`text` without its terminal colour codes."""
    return ANSI.sub("", str(text))


def scrub(text: str, repo: Path, others=()) -> str:
    """`text` with the submission's copy as paths relative to the repository, and the grader's Python and
    any of `others` (folders) shown as <grader>."""
    text = str(text).replace(f"{repo}/", "").replace(str(repo), ".")
    roots = {str(Path(p)) for p in (sys.prefix, sys.base_prefix, *others)}
    for root in sorted(roots, key=len, reverse=True):
        if root not in ("", "/"):
            text = text.replace(root, "<grader>")
    return text


def student_frames(traceback: list, repo: Path) -> tuple[list[str], int]:
    """(the frames of the student's files and of the notebook cell, each a block of lines; how many
    library frames were left out)."""
    kept, left_out = [], 0
    for block in traceback:
        block = strip_colours(block).strip()
        match = FRAME.match(block)
        if not match:
            continue
        path = match.group("path")
        if path is None or path.startswith(f"{repo}/"):
            kept.append(block)
        else:
            left_out += 1
    return kept, left_out


def describe_error(error: dict, repo: Path, others=()) -> str:
    """The error as feedback shows it: `Type: message`, then the student's frames (see the module doc)."""
    head = f"{error.get('ename') or 'Error'}: {error.get('evalue') or ''}".rstrip(": ")
    frames, left_out = student_frames(list(error.get("traceback") or []), repo)
    lines = [head]
    if frames:
        lines += ["", "Where, in your code and the cell (most recent call last):"]
        for frame in frames:
            lines += ["", frame]
    if left_out:
        lines += ["", f"({left_out} frames inside libraries left out)"]
    return scrub("\n".join(lines), repo, others)


def error_line(error: dict, repo: Path, cell=None, others=()) -> str:
    """One line for a notebook that stopped: where, the exception, and the student's innermost frame."""
    head = f"{error.get('ename') or 'Error'}: {error.get('evalue') or ''}".rstrip(": ")
    frames, _ = student_frames(list(error.get("traceback") or []), repo)
    where = ""
    if frames:
        first = frames[-1].splitlines()[0]
        where = f" (at {first.removeprefix('File ')})"
    text = (f"cell {cell} raised " if cell else "") + head + where
    return scrub(" ".join(text.split()), repo, others)
