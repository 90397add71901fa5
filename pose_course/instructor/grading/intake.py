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


def submission_time(source: Path) -> dict:
    """When a submission says it was made: {"at": ISO time or "", "how": where that came from}. A zip's
    newest entry (zip times carry no UTC offset: the late policy reads them in its deadline's), or a
    folder's last commit. Both are set on the student's machine; an LMS's time, given in the roster, wins.
    The repository is read by git with every configuration that could run a program turned off."""
    import subprocess
    import tempfile
    import zipfile

    source = Path(source)
    if source.is_file():
        try:
            with zipfile.ZipFile(source) as zf:
                times = [i.date_time for i in zf.infolist() if not i.is_dir()]
        except (OSError, zipfile.BadZipFile, ValueError):
            return {"at": "", "how": "the zip is unreadable"}
        if not times:
            return {"at": "", "how": "the zip holds no file"}
        y, mo, d, h, mi, s = max(times)
        return {"at": f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}",
                "how": "the newest file time in the zip, set by the student's machine"}
    git_dir = source / ".git"
    if not git_dir.is_dir():
        return {"at": "", "how": "a folder without .git"}
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
        safe = ["-c", "safe.directory=*", "-c", "core.fsmonitor=false", "-c", "log.showSignature=false",
                "-c", "gpg.program=false", "-c", "core.pager=cat", "-c", "log.mailmap=false"]
        try:
            done = subprocess.run(["git", *safe, "--no-pager", f"--git-dir={git_dir}", "log", "-1",
                                   "--no-show-signature", "--format=%cI", "HEAD"], env=env, cwd=home,
                                  capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            return {"at": "", "how": f"git could not read the repository ({type(e).__name__})"}
    at = done.stdout.strip()
    if done.returncode != 0 or not at:
        return {"at": "", "how": "a repository without a readable last commit"}
    return {"at": at[:40], "how": "the last commit's time, set by the student's machine"}
