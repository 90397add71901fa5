"""Seconds per submission for `python -m pose_utils grade`, on this repository's own assignment.

    python pose_course/instructor/benchmarks/grading.py --submissions 8 --jobs 2  # all three modes
    python pose_course/instructor/benchmarks/grading.py --submissions 30 --jobs 2 --modes full

The submissions are the student version (`release`) with every exercise filled back in from this
repository, copied N times; each is graded in the sandbox with the default grading parameters (tiny
data, one epoch). Modes: `full` (the checks, then the student's own notebooks as submitted),
`checks` (`--checks-only`) and `model` (`--checks-only --hidden-data`: the checks, then the trained
model each submission holds in runs/challenge/, here cnn_frame trained for one epoch on the tiny
preset, predicting 16 validation clips of the hidden subjects at another seed). Reported per mode: wall
seconds for the batch, seconds per submission, the
projection to 30 submissions, and where one submission's time goes (the checks run and the own-notebooks
run, medians over the batch).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))


def complete_submission(folder: Path) -> Path:
    """The student version with every exercise filled back in from this repository."""
    from pose_course.instructor import release as rel

    result = rel.release(ROOT, folder)
    for name in sorted({ex.path for ex in result["exercises"]}):
        instructor = rel.strip_hidden((ROOT / name).read_text(), name)
        (folder / name).write_text(rel.fill_solutions((folder / name).read_text(), instructor, name))
    return folder


def tiny_data(folder: Path, seed: int, hidden: bool = False) -> Path:
    from pose_course.cli import main as cli

    if not (folder / "valid.h5").is_file():
        cli(["make-data", "--out", str(folder), "--preset", "tiny", "--format", "h5", "--seed", str(seed),
             "--workers", "1", *(["--hidden-subjects"] if hidden else [])])
    return folder


def add_trained_run(submission: Path, data: Path) -> None:
    """runs/challenge/: cnn_frame trained by the engine for one epoch (what the model mode grades)."""
    from pose_utils.training import TrainConfig, train

    config = TrainConfig(model="cnn_frame", epochs=1, batch_size=4, seed=0)
    train(data, submission / "runs" / "challenge", config, progress=False, keep_checkpoints=False)


def run_mode(mode: str, submissions: list[Path], out: Path, jobs: int, hidden: Path | None = None) -> dict:
    from pose_course.instructor.grading.grade import grade, grading_parameters

    parameters = grading_parameters(ROOT, out)  # renders the grading data once, outside the timing
    tic = time.perf_counter()
    results = grade(submissions, out, ROOT, jobs=jobs, parameters=parameters,
                    execute_notebooks=mode == "full", hidden_data=hidden if mode == "model" else None)
    wall = time.perf_counter() - tic
    runs = {k: statistics.median(r["runs"][k]["seconds"] for r in results if k in r.get("runs", {}))
            for k in ("checks", "notebooks") if any(k in r.get("runs", {}) for r in results)}
    if mode == "model":
        runs["model"] = statistics.median(r["model"]["seconds"] or 0.0 for r in results)
    return {"mode": mode, "submissions": len(results), "jobs": jobs, "wall_seconds": wall,
            "seconds_per_submission": wall / len(results), "projected_30_seconds": 30 * wall / len(results),
            "median_run_seconds": runs,
            "all_full_marks": all(sum(c["earned"] for c in r["checks"].values()) == sum(
                c["points"] for c in r["checks"].values()) for r in results),
            "model_mpjpe_mm": [r["model"]["mpjpe_mm"] for r in results if r.get("model")],
            "load_average": os.getloadavg()[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--modes", default="checks,full,model", help="comma-separated: checks, full, model")
    parser.add_argument("--out", default=None, help="write the results here as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TQDM_DISABLE", "1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="grading_bench_") as tmp:
        tmp = Path(tmp)
        one = complete_submission(tmp / "complete")
        modes = [m.strip() for m in args.modes.split(",")]
        hidden = None
        if "model" in modes:
            add_trained_run(one, tiny_data(tmp / "train-data", 0))
            hidden = tiny_data(tmp / "hidden", 9137, hidden=True)
        subs = []
        for i in range(args.submissions):
            subs.append(tmp / "submissions" / f"student{i:02d}")
            shutil.copytree(one, subs[-1])
        for mode in modes:
            row = run_mode(mode, subs, tmp / f"out_{mode}", args.jobs, hidden)
            rows.append(row)
            runs = ", ".join(f"{k} {v:.1f} s" for k, v in row["median_run_seconds"].items())
            print(f"{row['mode']:6s}: {row['submissions']} submissions, --jobs {row['jobs']}: "
                  f"{row['wall_seconds']:.0f} s, {row['seconds_per_submission']:.1f} s per submission "
                  f"(30 in {row['projected_30_seconds'] / 60:.1f} min); one submission: {runs}; "
                  f"full marks: {row['all_full_marks']}; load average {row['load_average']:.1f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
