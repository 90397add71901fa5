"""Step 1 of grading a submission (grade's docstring): a folder or a .zip brought in.

The checks on the way (sizes, member counts, symlinks, `..`) are pose_course.instructor.grading.untrusted's
`unzip_safely` and `copy_tree`; this module says what a course repository is and what is left out.
"""

from __future__ import annotations

from pathlib import Path

from pose_course.instructor.grading.untrusted import Rejected, copy_tree, unzip_safely

PACKAGE = "pose_utils"
DEFAULT_MAX_BYTES = 200 * 1024**2  # a submission, unpacked or copied
MAX_FILES = 20000
SKIPPED_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "__pycache__", ".ipynb_checkpoints", ".pytest_cache",
                ".mypy_cache", ".ruff_cache", "node_modules", "__MACOSX"}


def find_repository(folder: Path, label: str) -> Path:
    """`folder`, or its single top-level folder, when it holds PACKAGE/__init__.py; else Rejected."""
    def is_repo(p: Path) -> bool:
        return (p / PACKAGE / "__init__.py").is_file()

    if is_repo(folder):
        return folder
    entries = [e for e in folder.iterdir() if not e.name.startswith(".") and e.name not in SKIPPED_DIRS]
    if len(entries) == 1 and entries[0].is_dir() and is_repo(entries[0]):
        return entries[0]
    raise Rejected("not_a_repository", f"{label}: not a repository of the course (no {PACKAGE}/__init__.py "
                                       "at its top or in its one top-level folder)")


def stage(source: Path, dest: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Path, list[str]]:
    """Unpack or copy a submission into `dest`; (the repository inside it, symlinks left out)."""
    if source.is_dir():
        left_out = copy_tree(source, dest, max_bytes, MAX_FILES, SKIPPED_DIRS)
    elif source.is_file() and source.suffix.lower() == ".zip":
        unzip_safely(source, dest, max_bytes, MAX_FILES, SKIPPED_DIRS)
        left_out = []
    else:
        raise Rejected("not_a_repository", f"{source.name}: neither a folder nor a .zip file")
    return find_repository(dest, source.name), left_out


def syntax_errors(repo: Path) -> list[str]:
    """'pose_utils/x.py line N: message' for each module of the package Python cannot parse (compiled,
    never run)."""
    found = []
    for path in sorted((repo / PACKAGE).rglob("*.py")):
        rel = path.relative_to(repo)
        if path.stat().st_size > 4 * 1024**2:
            continue
        try:
            compile(path.read_bytes(), str(rel), "exec", dont_inherit=True)
        except SyntaxError as e:
            found.append(f"{rel} line {e.lineno}: {type(e).__name__}: {e.msg}")
        except Exception as e:  # null bytes, nesting too deep for the parser
            found.append(f"{rel}: {type(e).__name__}: {e}")
    return found
