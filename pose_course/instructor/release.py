"""The student version of this repository: `python -m pose_utils release --out DIR` (`make release`).

Derived from this, the instructor's, repository and never edited by hand (nbgrader's rule: one source
of truth). What changes on the way:

- every file git tracks (or would track: new files not ignored) is copied, except the instructor's folder
  (pose_course/instructor/: the grader, this tool, their tests and benchmarks); data, runs, outputs and
  results are ignored files;
- in Python files each `### BEGIN SOLUTION (NOTEBOOK)` ... `### END SOLUTION` region becomes
  `# YOUR CODE HERE` and `raise NotImplementedError("Exercise: write F in FILE (NOTEBOOK explains it)")`,
  at the region's indentation;
- in every text file, `### BEGIN INSTRUCTOR ONLY` ... `### END INSTRUCTOR ONLY` blocks are removed (the
  command-line entries of `grade` and `release` are such a block, and so are the instructors' part of
  docs/assignment.md, whose delimiters are HTML comments, and the instructor's import contract), and so
  are nbgrader's `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` blocks (hidden test lines);
- in notebooks, cells tagged `hidden` are removed, answer cells' solution regions become
  "YOUR ANSWER HERE", and every output is cleared except those of the public check cells: they are the
  reference nbval compares a student's run with (`make check`). The paired Markdown copies under
  `notebooks/text/` are written from the released notebooks, so the two agree;
- README.md gains a first paragraph saying what to write.

The release is written into a temporary folder beside DIR and renamed into place: an interrupted run
leaves no half release, and DIR must not exist yet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pose_course.cells import ANSWER_TAG, CHECK_TAG, HIDDEN_TAG, is_checked
from pose_utils.errors import EXERCISE_PREFIX, ConfigError, DataError

# What a student never gets: this folder, whatever it holds (grading, releasing, their tests, the grading
# benchmark, the system packages). A module added here stays with the instructor without a list to update.
INSTRUCTOR_DIR = "pose_course/instructor/"


def instructor_only(name: str) -> bool:
    """Whether a repository path (POSIX, relative) is the instructor's: under INSTRUCTOR_DIR."""
    return name.startswith(INSTRUCTOR_DIR)


BEGIN_SOLUTION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?:\s*\((?P<notebook>[^)]*)\))?\s*$")
END_SOLUTION = re.compile(r"^[ \t]*### END SOLUTION\s*$")
# In Markdown the hidden-block delimiters may be HTML comments, so they do not render as headings.
BEGIN_HIDDEN = re.compile(r"^[ \t]*(?:<!--\s*)?### BEGIN HIDDEN TESTS\s*(?:-->)?\s*$")
END_HIDDEN = re.compile(r"^[ \t]*(?:<!--\s*)?### END HIDDEN TESTS\s*(?:-->)?\s*$")
# Instructor-only text that is not a test (commands, docs, contracts): a marker of its own.
BEGIN_INSTRUCTOR = re.compile(r"^[ \t]*(?:<!--\s*)?### BEGIN INSTRUCTOR ONLY\s*(?:-->)?\s*$")
END_INSTRUCTOR = re.compile(r"^[ \t]*(?:<!--\s*)?### END INSTRUCTOR ONLY\s*(?:-->)?\s*$")
DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async\s+)?def (?P<name>\w+)\s*\(")
ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".sh", ""}


@dataclass(frozen=True)
class Exercise:
    """One solution region: the function it sits in, its file, and the notebook that explains it."""

    path: str
    function: str
    notebook: str

    @property
    def message(self) -> str:
        where = f" ({self.notebook} explains it)" if self.notebook else ""
        return f"{EXERCISE_PREFIX}write {self.function} in {self.path}{where}"


def _regions(lines: list[str], begin: re.Pattern, end: re.Pattern, where: str):
    """(start, stop) line indices of each begin..end block, stop exclusive; DataError when unbalanced."""
    start = None
    for i, line in enumerate(lines):
        if begin.match(line):
            if start is not None:
                raise DataError(f"{where}:{i + 1}: a region begins inside the region of line {start + 1}")
            start = i
        elif end.match(line):
            if start is None:
                raise DataError(f"{where}:{i + 1}: a region ends that never began")
            yield start, i + 1
            start = None
    if start is not None:
        raise DataError(f"{where}:{start + 1}: the region never ends")


def strip_hidden(text: str, where: str) -> str:
    """`text` without its `### BEGIN INSTRUCTOR ONLY` ... `### END INSTRUCTOR ONLY` and
    `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS` blocks."""
    lines = text.splitlines(keepends=True)
    for begin, end in ((BEGIN_INSTRUCTOR, END_INSTRUCTOR), (BEGIN_HIDDEN, END_HIDDEN)):
        for start, stop in reversed(list(_regions(lines, begin, end, where))):
            del lines[start:stop]
    return "".join(lines)


def clear_solutions(text: str, path: str) -> tuple[str, list[Exercise]]:
    """`text` with each solution region replaced by the student's stub; the exercises, in file order."""
    lines = text.splitlines(keepends=True)
    exercises, out, last = [], [], 0
    for start, stop in _regions(lines, BEGIN_SOLUTION, END_SOLUTION, path):
        match = BEGIN_SOLUTION.match(lines[start])
        indent = match["indent"]
        function = next((m["name"] for line in reversed(lines[:start]) if (m := DEF.match(line))
                         and len(m["indent"]) < len(indent)), "the code")
        exercise = Exercise(path, function, (match["notebook"] or "").strip())
        exercises.append(exercise)
        out += lines[last:start]
        out += [f"{indent}# YOUR CODE HERE\n", f"{indent}raise NotImplementedError(\n",
                f"{indent}    {json.dumps(exercise.message)})\n"]
        last = stop
    return "".join(out + lines[last:]), exercises


def _answer_stub(source: str, where: str) -> str:
    lines = source.splitlines(keepends=True)
    blocks = list(_regions(lines, re.compile(r"^\s*### BEGIN SOLUTION\s*$"), END_SOLUTION, where))
    for start, stop in reversed(blocks):
        lines[start:stop] = [ANSWER_PLACEHOLDER + "\n"]
    return "".join(lines).rstrip("\n") if blocks else ANSWER_PLACEHOLDER


def release_notebook(nb, where: str) -> tuple[object, list[Exercise]]:
    """The student's copy of notebook `nb` (nbformat NotebookNode), changed in place, and its exercises."""
    exercises, kept = [], []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if HIDDEN_TAG in tags:
            continue
        source = strip_hidden(cell.source, where)
        if cell.cell_type == "code":
            source, found = clear_solutions(source, where)
            exercises += found
            # Cells nbval compares keep their stored outputs (graded checks and the notebooks' own
            # `# NBVAL_CHECK_OUTPUT` cells): the student's `make check` and `make test` compare them too.
            if CHECK_TAG not in tags and not is_checked(cell):
                cell.outputs = []  # nbval errors on an unrun cell with outputs
                cell.execution_count = None
        elif ANSWER_TAG in tags:
            source = _answer_stub(source, where)
        cell.source = source
        kept.append(cell)
    nb.cells = kept
    return nb, exercises


def tracked_files(root: Path) -> list[str]:
    """The files of the repository at `root` that git tracks or would track (not ignored), sorted."""
    try:
        done = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                              cwd=root, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise DataError(f"{root}: not a git checkout, so which files belong to the release is unknown "
                        f"({e})") from None
    names = sorted({n for n in done.stdout.decode().split("\0") if n})
    return [n for n in names if (root / n).is_file()]


def _readme_banner(exercises: list[Exercise]) -> str:
    by_file: dict[str, list[str]] = {}
    for ex in exercises:
        by_file.setdefault(ex.path, []).append(ex.function)
    rooms = "; ".join(f"`{path}`: {', '.join(f'`{f}`' for f in functions)}"
                      for path, functions in by_file.items())
    return (
        f"> **Student version.** {len(exercises)} functions are yours to write, each marked"
        f" `# YOUR CODE HERE` and explained by a notebook: {rooms}. `make check` runs the notebooks' public"
        " checks and says"
        " how far you are; `docs/assignment.md` says what to hand in.\n\n"
    )


def fill_solutions(student_text: str, instructor_text: str, where: str = "") -> str:
    """The student's file with each `# YOUR CODE HERE` stub replaced by the body of the instructor's
    region in the same place: what a complete submission holds (tests, the round trip of a release)."""
    lines = instructor_text.splitlines(keepends=True)
    bodies = [lines[a + 1:b - 1] for a, b in _regions(lines, BEGIN_SOLUTION, END_SOLUTION, where)]
    out, student = [], student_text.splitlines(keepends=True)
    i = 0
    while i < len(student):
        if student[i].strip() == "# YOUR CODE HERE" and bodies:
            out += bodies.pop(0)
            i += 3  # the comment, `raise NotImplementedError(` and its message
        else:
            out.append(student[i])
            i += 1
    if bodies:
        raise DataError(f"{where}: {len(bodies)} solution region(s) have no stub to fill")
    return "".join(out)


def release(root, out) -> dict:
    """Write the student version of the repository at `root` into the new folder `out`.

    Returns {"files": count, "exercises": [Exercise, ...], "removed_cells": count}.
    """
    import jupytext
    import nbformat

    root, out = Path(root).resolve(), Path(out)
    if out.exists():
        raise ConfigError(f"--out {out}: exists already; the release goes into a new folder")
    if out.resolve().is_relative_to(root) and not _ignored(root, out):
        raise ConfigError(f"--out {out}: inside the repository but not ignored by git; choose a folder "
                          "outside it or under an ignored one (release/ is ignored)")
    files = [f for f in tracked_files(root) if not instructor_only(f)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    exercises, removed = [], 0
    try:
        notebooks = {}
        for name in files:
            src, dst = root / name, tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".ipynb"):
                nb = nbformat.read(src, as_version=4)
                before = len(nb.cells)
                nb, found = release_notebook(nb, name)
                removed += before - len(nb.cells)
                exercises += found
                nbformat.write(nb, dst)
                notebooks[name] = nb
            elif Path(name).suffix in TEXT_SUFFIXES or Path(name).name == "Makefile":
                text = strip_hidden(src.read_text(), name)
                if name.endswith(".py"):
                    text, found = clear_solutions(text, name)
                    exercises += found
                dst.write_text(text)
            else:
                shutil.copyfile(src, dst)
            shutil.copymode(src, dst)
        for name, nb in notebooks.items():  # the paired Markdown copies follow the released notebooks
            paired = tmp / Path(name).parent / "text" / (Path(name).stem + ".md")
            if paired.is_file():
                jupytext.write(nb, paired, fmt="md")
        readme = tmp / "README.md"
        if readme.is_file():
            text = readme.read_text()
            head, sep, rest = text.partition("\n\n")
            readme.write_text(head + sep + _readme_banner(exercises) + rest)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"files": len(files), "exercises": exercises, "removed_cells": removed}


def _ignored(root: Path, path: Path) -> bool:
    done = subprocess.run(["git", "check-ignore", "-q", str(path.resolve())], cwd=root)
    return done.returncode == 0


def main(args) -> int:
    """`python -m pose_utils release --out DIR`."""
    result = release(Path(__file__).resolve().parents[2], args.out)
    print(f"wrote the student version to {args.out}: {result['files']} files, "
          f"{len(result['exercises'])} exercises, {result['removed_cells']} hidden cells left out")
    for ex in result["exercises"]:
        print(f"  {ex.path}: {ex.function}" + (f" ({ex.notebook})" if ex.notebook else ""))
    return 0
