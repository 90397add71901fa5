"""`python -m pose_utils run-notebooks`: the numbered notebooks executed in order with papermill.

`python -m pose_utils run-notebooks --out OUT [--quick] [-p NAME VALUE ...]` executes
notebooks/NN_*.ipynb in order with papermill into OUT (executed copies, same names) and chains them
through their parameters: 03 trains into OUT/run, 04 evaluates that run into OUT/evaluation, 05 sweeps
03 into OUT/experiments. A value given with -p is parsed (numbers, true/false, none, JSON lists) and
passed only to the notebooks whose `parameters` cell has that name. `--quick` keeps the notebooks' own
quick defaults (tiny 64×64 data rendered into OUT/data/tiny, 1–2 epochs); without it the demo's
settings (DEMO_PARAMETERS) apply. A failing cell stops the run with one message naming the notebook and
the cell; the executed copy, error included, is kept in OUT, and each kernel's own stderr (TensorFlow's
C++ lines) in OUT/logs/NAME.stderr.log. OUT/summary.json lists every notebook's wall time and the values
it recorded with `record`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from pose_course.execute import execute_notebook, notebook_parameters, stderr_to
from pose_course.records import read_records
from pose_utils.errors import ConfigError, PoseUtilsError
from pose_utils.fileio import write_json

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"

# What `run-notebooks` (without --quick) passes on top of the notebooks' quick defaults: the demo, on the
# 224x224 `small` preset. Keys: "*" for every notebook, else the notebook's number; each value goes only
# to notebooks whose parameters cell has that name. Notebook 03 trains `cnn_lstm` (the seed's design with
# a small CNN before the LSTM and a linear head) because the seed model does not beat the mean-pose
# baseline within the demo's budget on a CPU (docs/notebooks.md has the measurements); notebook 02 keeps
# describing the report's seed model, and notebook 05 sweeps the seed model on a few clips for the
# report's batch-size / learning-rate discussion.
DEMO_PARAMETERS: dict[str, dict] = {
    "*": {"preset": "small"},
    "03": {"model": "cnn_lstm", "epochs": 8},
    "05": {"sweep_model": "seed", "sweep_epochs": 2, "batch_sizes": [1, 5, 10],
           "learning_rates": [1e-4, 1e-3], "sweep_max_train_clips": 30, "sweep_max_valid_clips": 20},
    "06": {"epochs": 4},
}

# Paths the runner chains between notebooks (relative to OUT), given to the notebooks that take them.
CHAINED_PATHS = {"run_dir": "run", "eval_dir": "evaluation", "sweep_dir": "experiments",
                 "challenge_dir": "challenge"}


# ----------------------------------------------------------------------------- parameters


def parse_value(text: str):
    """A -p value as Python: JSON numbers, true/false/null (also True/False/None), JSON lists and
    objects; anything else stays a string: "1e-4" -> 0.0001, "5" -> 5, "[1, 5]" -> [1, 5],
    "runs/a" -> "runs/a".
    """
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    spelled = {"true": True, "false": False, "none": None, "null": None}
    if stripped.lower() in spelled:
        return spelled[stripped.lower()]
    try:
        value = json.loads(stripped)
    except ValueError:
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text  # NaN / Infinity are never a sensible notebook parameter
    return value


def discover(notebooks_dir: str | os.PathLike) -> list[Path]:
    """The numbered notebooks NN_*.ipynb of a folder, in order; ConfigError when there are none."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: notebook folder not found")
    found = sorted(folder.glob(NOTEBOOK_PATTERN))
    if not found:
        raise ConfigError(f"{folder}: no numbered notebooks (NN_name.ipynb) in it")
    return found


def plan(notebooks: list[Path], out_dir: Path, quick: bool, given: dict) -> list[tuple[Path, dict]]:
    """The parameters each notebook gets: chained paths, then the demo's settings (not with `quick`),
    then the user's -p values, each only where the notebook's `parameters` cell has that name. Unknown -p
    names are a ConfigError.
    """
    out_dir = Path(out_dir).resolve()
    accepted = {nb: notebook_parameters(nb) for nb in notebooks}
    every_name = set().union(*accepted.values())
    unknown = sorted(set(given) - every_name)
    if unknown:
        raise ConfigError(f"no notebook has a parameter named {', '.join(unknown)}; "
                          f"known parameters: {', '.join(sorted(every_name))}")
    common: dict = {}
    if quick:
        common["data_dir"] = str(out_dir / "data" / "tiny")
        common["preset"] = "tiny"
    else:
        common.update(DEMO_PARAMETERS.get("*", {}))
        common["data_dir"] = str(Path("data/small").resolve())
    common.update({name: str(out_dir / sub) for name, sub in CHAINED_PATHS.items()})
    common["train_if_missing"] = False  # 04 reads the run 03 wrote; a missing run is an error here
    given = dict(given)
    for key in ("data_dir", *CHAINED_PATHS):
        if isinstance(given.get(key), str):
            given[key] = str(Path(given[key]).resolve())  # the kernels run in the notebooks' folder
    training = next((nb for nb in notebooks if "training" in nb.stem), None)
    if training is not None:
        common["training_notebook"] = str(training.resolve())
    steps = []
    for nb in notebooks:
        own = {} if quick else DEMO_PARAMETERS.get(nb.name[:2], {})
        params = {k: v for k, v in {**common, **own, **given}.items() if k in accepted[nb]}
        steps.append((nb, params))
    return steps


def run_notebooks(notebooks_dir: str | os.PathLike, out_dir: str | os.PathLike, quick: bool = False,
                  parameters: dict | None = None, progress: bool = True) -> dict:
    """Execute every numbered notebook of `notebooks_dir` in order into `out_dir` (see module docstring).

    Returns the summary also written to OUT/summary.json:
    {"quick", "parameters" (the -p values), "notebooks": [{"name", "parameters", "seconds", "records"}]}.
    """
    notebooks = discover(notebooks_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = plan(notebooks, out_dir, quick, parameters or {})
    # TensorFlow's C++ start-up lines would land in every notebook's stderr; the kernels inherit this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    summary = {"quick": quick, "parameters": parameters or {}, "notebooks": []}
    total = time.perf_counter()
    for i, (nb, params) in enumerate(steps, start=1):
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if k != "training_notebook")
        print(f"[{i}/{len(steps)}] {nb.name}" + (f" ({shown})" if shown else ""), flush=True)
        tic = time.perf_counter()
        # The kernel's own C++ lines (TensorFlow's start-up and tf.data notices) would flood the
        # terminal; they go to a log beside the executed copy, the progress bar stays on screen.
        log = out_dir / "logs" / f"{nb.stem}.stderr.log"
        log.parent.mkdir(exist_ok=True)
        log.unlink(missing_ok=True)
        try:
            with stderr_to(log, keep_sys_stderr=True):
                output = execute_notebook(nb, out_dir / nb.name, params, progress=progress)
        except PoseUtilsError as e:
            raise type(e)(f"{e} (the kernel's own messages: {log})") from None
        seconds = time.perf_counter() - tic
        records = read_records(output)
        summary["notebooks"].append({"name": nb.name, "parameters": params, "seconds": round(seconds, 1),
                                     "records": records})
        write_json(out_dir / "summary.json", summary)
        print(f"      done in {seconds:.0f} s -> {output}", flush=True)
    summary["seconds"] = round(time.perf_counter() - total, 1)
    write_json(out_dir / "summary.json", summary)
    return summary


def _print_results(summary: dict, out_dir: Path) -> None:
    records = {k: v for nb in summary["notebooks"] for k, v in nb["records"].items()}
    print(f"\nall {len(summary['notebooks'])} notebooks ran in {summary['seconds']:.0f} s; "
          f"executed copies in {out_dir}")
    if "mpjpe_mm" in records:
        line = f"validation MPJPE {records['mpjpe_mm']:.1f} mm"
        if "baseline_mean_pose_mpjpe_mm" in records:
            line += f" (mean-pose baseline {records['baseline_mean_pose_mpjpe_mm']:.1f} mm)"
        print(line)
    for key, label in (("metrics_json", "metrics"), ("run_dir", "trained run")):
        if key in records:
            print(f"{label}: {records[key]}")


def main(args) -> int:
    """`python -m pose_utils run-notebooks --out DIR [--quick] [-p NAME VALUE ...] [--notebooks DIR]`."""
    given = {}
    for name, value in args.parameter:
        if not name.isidentifier():
            raise ConfigError(f"-p {name}: a parameter name must be a Python identifier")
        given[name] = parse_value(value)
    out_dir = Path(args.out)
    summary = run_notebooks(args.notebooks, out_dir, quick=args.quick, parameters=given,
                            progress=os.environ.get("TQDM_DISABLE", "") in ("", "0"))
    _print_results(summary, out_dir)
    return 0
