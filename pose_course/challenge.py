"""The challenge's hand-in: the finished run a student submits, where the grader looks for it.

Notebook 06 trains the challenge model into its `challenge_dir` (by default under `outputs/`, which a
submission leaves out, so `make check` and `make test` can train there without touching what was handed
in). `hand_in_run` copies that run's files, not its checkpoints, into `runs/challenge/` of the repository,
which the submission carries and `grade --hidden-data` reads (pose_course/instructor/grading/model_grade.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pose_course.paths import repository_root
from pose_utils.errors import DataError
from pose_utils.training.runfolder import RunFolder

# The run folder a submission carries, relative to the repository's root.
CHALLENGE_RUN = "runs/challenge"


def hand_in_run(run_dir: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Copy the finished run at `run_dir` (model, target transform, config, data, history, mean pose; no
    checkpoints) to `dest` (default: the repository's CHALLENGE_RUN), replacing what was there only once
    the copy is complete. Returns dest; DataError when run_dir holds no finished run."""
    source = RunFolder(run_dir)
    if not source.finished():
        raise DataError(f"{run_dir}: no finished run (model.keras is saved when the last epoch ends)")
    root = repository_root()
    target = Path(dest) if dest is not None else (root if root is not None else Path.cwd()) / CHALLENGE_RUN
    target.parent.mkdir(parents=True, exist_ok=True)
    files = [source.model_file, source.transform_file, source.config_file, source.data_file,
             source.history_file, source.mean_pose_file]
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for f in files:
            if f.is_file():
                shutil.copy2(f, staging / f.name)
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
