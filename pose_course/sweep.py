"""The sweep of notebook 05: the training notebook run once per setting with papermill, one factor at a
time, and the results table and curves' runs.

Each setting's run goes to SWEEP_DIR/<setting name>/ (the executed notebook, its run/ folder and its
kernel's stderr log). A setting whose run already finished there with the same parameters is reused, so
an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from pathlib import Path

from pose_course.execute import execute_notebook, notebook_parameters, stderr_to
from pose_utils.errors import ConfigError
from pose_utils.fileio import write_json
from pose_utils.training.runfolder import RunFolder


def sweep_settings(factors: dict, base: dict, seeds=None) -> list[dict]:
    """One-factor-at-a-time settings, as in the report's discussion.

    factors: {"batch_size": [1, 5, 10], "learning_rate": [1e-4, 1e-3]}; base: the values of the other
    factors, e.g. {"batch_size": 5, "learning_rate": 1e-4}. Returns the distinct settings, each a dict
    holding every factor, in a stable order (the base setting first). seeds: a list of seeds to run
    every setting once per seed (each setting then also holds "seed"): what shows how far two runs of
    one setting differ by chance alone.
    """
    if seeds is not None:
        if not isinstance(seeds, (list, tuple)) or not seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(f"sweep seeds must be a non-empty list of distinct seeds, got {seeds!r}")
        return [{**s, "seed": int(k)} for s in sweep_settings(factors, base) for k in seeds]
    for name, values in factors.items():
        if name not in base:
            raise ConfigError(f"sweep factor {name!r} needs a base value")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"sweep factor {name!r} needs a non-empty list of values, got {values!r}")
    settings = [dict(base)]
    for name, values in factors.items():
        for value in values:
            setting = {**base, name: value}
            if setting not in settings:
                settings.append(setting)
    return settings


def _setting_name(setting: dict) -> str:
    short = {"batch_size": "bs", "learning_rate": "lr", "epochs": "ep", "model": "m", "seed": "s"}
    return "_".join(f"{short.get(k, k)}{v:g}" if isinstance(v, float) else f"{short.get(k, k)}{v}"
                    for k, v in setting.items())


def _reusable(run_dir: Path, params: dict) -> bool:
    """True when RUN_DIR holds a finished run of these parameters, on the same data (the run folder's
    `finished` and `matches`): what lets an interrupted sweep continue instead of training that setting
    again."""
    folder = RunFolder(run_dir)
    return folder.finished(params.get("epochs"), need_model=False) and folder.matches(params)


@contextlib.contextmanager
def _follow(run_dir: Path, bar, name: str, interval: float = 0.5):
    """Show the progress of the run training in RUN_DIR (its progress.json) on `bar` while the block runs.

    The run trains in another kernel, whose own bars land in its executed notebook: without this, the
    sweep's cell would show nothing for the 30-45 s of each run.
    """
    from pose_utils.training.runfolder import PROGRESS_FILE, read_progress

    with contextlib.suppress(FileNotFoundError):
        (run_dir / PROGRESS_FILE).unlink()  # a previous run's "done" would read as this one's
    stop = threading.Event()
    bar.reset(total=1)
    bar.set_description(f"{name}: starting", refresh=True)

    def poll():
        seen = None
        while not stop.wait(interval):
            p = read_progress(run_dir)
            if p and p.get("phase") in ("train", "validate") and p.get("steps"):
                where = (p["epoch"], p["phase"])
                if where != seen:
                    bar.reset(total=p["steps"])
                    bar.set_description(f"{name}: epoch {p['epoch']}/{p['epochs']} {p['phase']}",
                                        refresh=False)
                    seen = where
                bar.n = min(int(p["step"]), p["steps"])
            bar.refresh()  # the elapsed time moves even while the kernel starts

    thread = threading.Thread(target=poll, name="sweep-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def sweep(training_notebook: str | os.PathLike, sweep_dir: str | os.PathLike, settings: list[dict],
          fixed: dict, progress: bool = True) -> list[dict]:
    """Run the training notebook once per setting with papermill; collect each run's history.

    Each run goes to SWEEP_DIR/<setting name>/ (the executed notebook and its run/ folder without its
    weights: the checkpoints and model.keras go once the run has finished, the history stays); a setting
    whose run already finished there (same parameters, same data, same pose_utils code) is reused.
    fixed: parameters every run gets (data_dir, epochs, clip limits, ...). Returns one dict per setting:
    the setting's values, "run_dir", "history", "seconds" (wall time of the run, ~0 when reused),
    "final_val_mpjpe", "best_val_mpjpe" (mm), "clips_per_second" (training speed of the last epoch); the
    list is also written to SWEEP_DIR/results.json.
    """
    from tqdm.auto import tqdm

    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    accepted = notebook_parameters(training_notebook)
    for name in {k for s in settings for k in s} | set(fixed) | {"run_dir"}:
        if name not in accepted:
            raise ConfigError(f"{Path(training_notebook).name} has no parameter {name!r} to sweep or fix")
    results = []
    quiet = {} if progress else {"disable": True}  # disable=False would override TQDM_DISABLE=1
    runs = tqdm(total=len(settings), desc="sweep", unit="run", **quiet)
    # one bar for the runs, one for the current run's steps (reset per run); neither is closed with
    # leave=False, which would leave the saved notebook a view of a widget that no longer exists
    current = tqdm(total=1, desc="run", unit="step", **quiet,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}]")
    for setting in settings:
        name = _setting_name(setting)
        run_dir = sweep_dir / name / "run"
        # A sweep run keeps its history, not its weights: no checkpoints (keep_checkpoints) and, once it has
        # finished, no model (drop_model below); the seed's weights are 0.3 GB, 0.9 GB with Adam's state.
        params = {**fixed, **setting, "run_dir": str(run_dir.resolve()), "overwrite": True,
                  "keep_checkpoints": False}
        params = {k: v for k, v in params.items() if k in accepted}
        tic = time.perf_counter()
        if _reusable(run_dir, params):
            current.set_description(f"{name}: finished before, reused", refresh=True)
        else:
            (sweep_dir / name).mkdir(parents=True, exist_ok=True)
            # The run's kernel inherits our stderr: keep its TensorFlow start-up lines in a log file, not in
            # the output of the cell that runs the sweep.
            with stderr_to(sweep_dir / name / "kernel-stderr.log"), _follow(run_dir, current, name):
                execute_notebook(Path(training_notebook), sweep_dir / name / Path(training_notebook).name,
                                 params, progress=False)
            RunFolder(run_dir).drop_model()  # the sweep reads the history; the model is 0.3 GB for the seed
        runs.update()
        history = RunFolder(run_dir).read_history()
        val = history.get("val_mpjpe") or [math.nan]
        speed = history.get("clips_per_second") or [math.nan]
        results.append({**setting, "run_dir": str(run_dir), "history": history,
                        "seconds": round(time.perf_counter() - tic, 1),
                        "final_val_mpjpe": float(val[-1]), "best_val_mpjpe": float(min(val)),
                        # the last epoch's speed: the first one includes tracing the compiled step
                        "clips_per_second": float(speed[-1])})
    current.n = current.total  # complete, so that closing it shows success rather than an unfinished bar
    current.set_description(f"all {len(settings)} runs done", refresh=False)
    runs.close()
    current.close()
    write_json(sweep_dir / "results.json", results)
    return results


def sweep_rows(results: list[dict], factors=("batch_size", "learning_rate")) -> list[list]:
    """The sweep's results table: header + one row per run (factor values, the seed when the runs hold
    one, final/best MPJPE, speed)."""
    if any("seed" in r for r in results) and "seed" not in factors:
        factors = (*factors, "seed")
    header = [*factors, "final val MPJPE (mm)", "best val MPJPE (mm)", "train MPJPE (mm)", "clips/s",
              "seconds"]
    rows = [header]
    for r in results:
        train_mpjpe = (r["history"].get("train_mpjpe") or [math.nan])[-1]
        rows.append([*(f"{r[f]:g}" if isinstance(r[f], float) else r[f] for f in factors),
                     f"{r['final_val_mpjpe']:.1f}", f"{r['best_val_mpjpe']:.1f}", f"{train_mpjpe:.1f}",
                     f"{r['clips_per_second']:.1f}", f"{r['seconds']:.0f}"])
    return rows


def runs_varying(results: list[dict], factor: str, base: dict) -> list[dict]:
    """The sweep results that vary `factor` while every other factor of `base` keeps its base value,
    sorted by the factor, then the seed (the runs of one curve of a one-factor-at-a-time sweep)."""
    chosen = [r for r in results if all(r.get(k) == v for k, v in base.items() if k != factor)]
    return sorted(chosen, key=lambda r: (r[factor], r.get("seed", 0)))
