"""The whole comparison (`run_benchmark`) and the `benchmark` command (`main`).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from pose_course.compare.entries import mean_pose_entry, render_data, run_entry
from pose_course.compare.recipes import BASELINE, Preset, get_preset
from pose_course.compare.summary import markdown, plot_results, write_markdown
from pose_utils.errors import DataError
from pose_utils.fileio import write_json
from pose_utils.report import REPORT_PER_JOINT_MPJPE_MM  # the report's per-joint table, joints 1..17
from pose_utils.skeleton import JOINT_NAMES


def run_benchmark(preset_name: str, out_dir, data_dir=None, progress: bool = True) -> dict:
    """Run a preset ("tiny", "quick", "full") into OUT_DIR; returns the results.json dict.

    data_dir: an existing dataset folder (default: render the preset's data into OUT_DIR/data).
    Resumable: rerunning the same command skips finished entries and resumes a half-trained one.
    """
    from tqdm.auto import tqdm

    preset = get_preset(preset_name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    if data_dir is None:
        data_dir = render_data(preset, out_dir / "data", progress=progress)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such folder")
    entries = preset.entries()
    models = {BASELINE: mean_pose_entry(preset, data_dir)}
    bar = tqdm(entries.items(), desc=f"benchmark {preset.name}", unit="model",
               **({} if progress else {"disable": True}))
    for name, recipe in bar:
        bar.set_postfix_str(name)
        models[name] = run_entry(name, recipe, preset, data_dir, out_dir, progress=progress)
        results = _results(preset, data_dir, models, time.perf_counter() - tic)
        write_json(out_dir / "results.json", results)  # after every entry: partial results survive a kill
    results = _results(preset, data_dir, models, time.perf_counter() - tic)
    write_json(out_dir / "results.json", results)
    write_markdown(out_dir / "results.md", results)
    plot_results(results, out_dir / "per_joint.png")
    return results


def _results(preset: Preset, data_dir: Path, models: dict, seconds: float) -> dict:
    from pose_utils.data import open_split, subset

    def subjects(store):
        return sorted(set(store.meta["subject"].tolist())) if "subject" in store.meta else None

    with open_split(data_dir, "train") as train, open_split(data_dir, "valid") as valid:
        data = {
            "folder": str(data_dir.resolve()),
            "frame_size": train.frame_size,
            "train_clips": len(subset(len(train), preset.max_train_clips)),
            "valid_clips": len(subset(len(valid), preset.max_valid_clips)),
            "train_subjects": subjects(train),
            "valid_subjects": subjects(valid),
        }
    return {
        "preset": preset.name,
        "data": data,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "total_seconds": seconds,
        "report_per_joint_mpjpe_mm": dict(zip(JOINT_NAMES, REPORT_PER_JOINT_MPJPE_MM, strict=True)),
        "models": models,
    }


def main(args) -> int:
    """`python -m pose_utils benchmark --preset quick|full --out DIR [--data DIR]`."""
    results = run_benchmark(args.preset, args.out, data_dir=args.data)
    print(markdown(results))
    print(f"wrote {Path(args.out) / 'results.json'}, results.md and per_joint.png")
    return 0
