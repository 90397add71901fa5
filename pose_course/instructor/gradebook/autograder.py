"""The Gradescope autograder: the zip (`python -m pose_utils gradescope bundle --out autograder.zip`) and
what its two scripts run inside Gradescope's container (`python -m
pose_course.instructor.gradebook.autograder setup|run --root /autograder`).

The zip holds the instructor's repository (what git tracks and what it does not ignore), Gradescope's
`setup.sh` and `run_autograder` (gradescope_setup.sh and gradescope_run_autograder beside this file) and
gradescope.json (the limits). Gradescope unpacks it into /autograder/source. Its container refuses
bubblewrap's namespaces, so the runs use the weaker isolation of
pose_course.instructor.grading.container_user, chosen here by name; `grade` never falls back to it.
POSE_UTILS_AUTOGRADER_ROOT moves /autograder (the tests run the scripts in a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from pose_course.instructor.grading import container_user, sandbox
from pose_course.instructor.grading.answer_key import read_instructor
from pose_course.instructor.grading.grade import (
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_TIMEOUT,
    grade,
    grading_parameters,
)
from pose_course.instructor.grading.intake import SKIPPED_DIRS
from pose_course.instructor.grading.results import Result
from pose_utils.errors import ConfigError, DataError
from pose_utils.fileio import atomic_path, write_json

HERE = Path(__file__).parent
SCRIPTS = {"setup.sh": HERE / "gradescope_setup.sh", "run_autograder": HERE / "gradescope_run_autograder"}
SETTINGS = "gradescope.json"
ROOT_VAR = "POSE_UTILS_AUTOGRADER_ROOT"
DEFAULT_ROOT = "/autograder"
GRADING = "grading"  # ROOT/grading: the grade run's --out
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the same repository gives the same zip


def _repository_files(root: Path) -> list[str]:
    """Relative paths of the regular files to ship: git's tracked and unignored files in a checkout, else
    every file but virtual environments, caches and VCS folders."""
    if (root / ".git").exists():
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                               "--exclude-standard"], capture_output=True, timeout=120)
        if done.returncode != 0:
            raise ConfigError(f"{root}: git ls-files failed: {done.stderr.decode(errors='replace').strip()}")
        names = [n for n in done.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    else:
        names = []
        for here, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            names += [os.path.relpath(os.path.join(here, f), root) for f in files]
    return sorted(n for n in names if (root / n).is_file() and not (root / n).is_symlink())


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def bundle(zip_path, instructor_root, timeout: float | None = None, cell_timeout: float | None = None,
           checks_only: bool = False) -> Path:
    """Write the autograder zip; returns its path. ConfigError if the repository has no graded notebook."""
    root = Path(instructor_root).resolve()
    read_instructor(root)  # the contract holds before anything is shipped
    zip_path = Path(zip_path).resolve()
    settings = {"timeout": float(timeout or DEFAULT_TIMEOUT),
                "cell_timeout": float(cell_timeout or DEFAULT_CELL_TIMEOUT), "checks_only": bool(checks_only)}
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, script in SCRIPTS.items():
            _add(zf, name, script.read_bytes(), executable=True)
        _add(zf, SETTINGS, (json.dumps(settings, indent=2) + "\n").encode(), executable=False)
        for name in _repository_files(root):
            path = root / name
            if name in SCRIPTS or name == SETTINGS or path.resolve() == zip_path:
                continue
            _add(zf, name, path.read_bytes(), executable=os.access(path, os.X_OK))
    return zip_path


def _settings(source: Path) -> dict:
    path = source / SETTINGS
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        return {"timeout": float(settings["timeout"]), "cell_timeout": float(settings["cell_timeout"]),
                "checks_only": bool(settings["checks_only"])}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not the bundle's settings ({type(e).__name__}: {e}); build the zip with "
                          "`python -m pose_utils gradescope bundle`") from None


def setup(root: Path) -> None:
    """setup.sh's last step: check the isolation works here and render the grading data (once, in the
    image, instead of once per submission)."""
    sandbox.require(container_user.NAME)
    _settings(root / "source")
    parameters = grading_parameters(root / "source", root)
    print(f"autograder ready: isolation {container_user.NAME}; grading parameters {parameters}")


def run(root: Path) -> dict:
    """run_autograder's work: grade ROOT/submission against ROOT/source, write ROOT/results/results.json.
    Returns that dict."""
    from pose_course.instructor.gradebook.gradescope import RESULTS, results_json

    source, submission, results = root / "source", root / "submission", root / "results"
    settings = _settings(source)
    if not submission.is_dir():
        raise DataError(f"{submission}: no submission folder (Gradescope puts the student's files there)")
    metadata = root / "submission_metadata.json"
    if metadata.is_file():  # names and e-mails: not for the runs' eyes
        metadata.chmod(0o600)
    results.mkdir(exist_ok=True)
    results.chmod(0o755)  # only root writes results.json
    out = root / GRADING
    parameters = grading_parameters(source, root)
    graded = grade([submission], out, source, timeout=settings["timeout"],
                   cell_timeout=settings["cell_timeout"], parameters=parameters,
                   execute_notebooks=not settings["checks_only"], isolation=container_user.NAME,
                   progress=lambda line: print(line, flush=True))
    result = Result.from_dict(graded[0])
    data = results_json(result, read_instructor(source))
    write_json(results / RESULTS, data)
    print(f"wrote {results / RESULTS}: {data['score']:g} points, status {result.status}")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_course.instructor.gradebook.autograder",
                                     description="what the Gradescope bundle's scripts run")
    parser.add_argument("step", choices=["setup", "run"])
    parser.add_argument("--root", default=os.environ.get(ROOT_VAR, DEFAULT_ROOT),
                        help=f"Gradescope's folder (default: ${ROOT_VAR} or {DEFAULT_ROOT})")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    try:
        if args.step == "setup":
            setup(root)
        else:
            run(root)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
