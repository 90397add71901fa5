"""The numbered notebooks: the papermill runner (`run-notebooks`) and the glue the notebooks call.

Runner. `python -m pose_utils run-notebooks --out OUT [--quick] [-p NAME VALUE ...]` executes
notebooks/NN_*.ipynb in order with papermill into OUT (executed copies, same names) and chains them
through their parameters: 03 trains into OUT/run, 04 evaluates that run into OUT/evaluation, 05 sweeps
03 into OUT/experiments. A value given with -p is parsed (numbers, true/false, none, JSON lists) and
passed only to the notebooks whose `parameters` cell has that name. `--quick` keeps the notebooks' own
quick defaults (tiny 64×64 data rendered into OUT/data/tiny, 1–2 epochs); without it the demo's
settings (DEMO_PARAMETERS) apply. A failing cell stops the run with one message naming the notebook and
the cell; the executed copy, error included, is kept in OUT, and each kernel's own stderr (TensorFlow's
C++ lines) in OUT/logs/NAME.stderr.log. OUT/summary.json lists every notebook's wall time and the values
it recorded with `record`.

Glue for the notebooks (kept here so a notebook holds no logic of its own): `setup` (version check),
`ensure_data` (render the tiny preset where a default data folder is missing), `prepare_run_dir`,
`ensure_run`, `layer_table`, `text_table` / `markdown_table`, `record` / `read_records`, and `sweep`
(papermill runs of 03 for notebook 05).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from .errors import ConfigError, DataError, PoseUtilsError, unwrap_text
from .fileio import write_json

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
KERNEL_NAME = "python3"
# Display-data mimetype a notebook uses to record a value for the runner and the tests (what scrapbook's
# `glue` did, without the dependency): {"name": ..., "value": ...} with a JSON value.
RECORD_MIME = "application/vnd.pose-utils.record+json"

# What `run-notebooks` (without --quick) passes on top of the notebooks' quick defaults: the demo, on the
# 224x224 `small` preset (480 training clips of subjects S1-S8, 160 validation clips of S9 and S11).
# Keys: "*" for every notebook, else the notebook's number; each value goes only to notebooks whose
# parameters cell has that name. Measured on a 2-core CPU (docs/notebooks.md): the seed model trains at
# ~3-5 clips/s and does not beat the mean-pose baseline within the demo's 20 minutes, so notebook 03
# trains `cnn_lstm` (the seed's design with a small CNN before the LSTM and a linear head), which does
# within a few epochs. Notebook 02 keeps describing the report's seed model, and notebook 05 sweeps the
# seed model on a few clips for the report's batch-size / learning-rate discussion.
DEMO_PARAMETERS: dict[str, dict] = {
    "*": {"preset": "small"},
    "03": {"model": "cnn_lstm", "epochs": 8},
    "05": {"sweep_model": "seed", "sweep_epochs": 2, "batch_sizes": [1, 5, 10],
           "learning_rates": [1e-4, 1e-3], "sweep_max_train_clips": 30, "sweep_max_valid_clips": 20},
}

# Paths the runner chains between notebooks (relative to OUT), given to the notebooks that take them.
CHAINED_PATHS = {"run_dir": "run", "eval_dir": "evaluation", "sweep_dir": "experiments"}


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


def notebook_parameters(path: str | os.PathLike) -> dict:
    """The names and default texts of the notebook's `parameters` cell: {name: "default source"}.

    A notebook without a cell tagged `parameters` is a ConfigError (papermill could not inject values).
    """
    import nbformat
    import papermill

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: notebook not found")
    nb = nbformat.read(path, as_version=4)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ConfigError(f"{path}: no cell is tagged 'parameters'")
    return {name: p["default"] for name, p in papermill.inspect_notebook(str(path)).items()}


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
    for key in ("data_dir", "run_dir", "eval_dir", "sweep_dir"):
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


# ----------------------------------------------------------------------------- executing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def execute_notebook(notebook: Path, output: Path, parameters: dict, progress: bool = True,
                     cwd: Path | None = None) -> Path:
    """Run one notebook with papermill into `output` (written under a temporary name, then renamed).

    The kernel runs in `cwd` (default: the notebook's folder, as nbval and JupyterLab do). A failing cell
    raises PoseUtilsError naming the notebook, the cell and the error; the executed copy with the error
    is still moved to `output` so it can be opened.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".tmp.ipynb", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; an executed notebook is an ordinary file
    try:
        papermill.execute_notebook(
            str(notebook), str(tmp), parameters=parameters, kernel_name=KERNEL_NAME, language="python",
            progress_bar=progress, cwd=str(cwd or notebook.parent),
        )
    except PapermillExecutionError as e:
        os.replace(tmp, output)
        first_line = next((line for line in str(e.source).splitlines() if line.strip()), "").strip()
        ename, evalue = e.ename, (e.evalue or "").strip()
        inner = unwrap_text(evalue)  # a DataError that TensorFlow wrapped (tf.data read it mid-training)
        if inner is not None and ename != type(inner).__name__:
            ename, evalue = type(inner).__name__, str(inner)
        raise PoseUtilsError(
            f"{notebook.name}: cell #{e.cell_index + 1} (In [{e.exec_count}], starting {first_line!r}) "
            f"raised {ename}: {evalue}; the executed copy is {output}"
        ) from None
    except PoseUtilsError:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    except Exception as e:  # kernel died, timeout, bad notebook file: name the notebook
        if tmp.is_file() and tmp.stat().st_size:
            os.replace(tmp, output)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise PoseUtilsError(f"{notebook.name}: could not be executed ({type(e).__name__}: {e})") from None
    except BaseException:  # Ctrl-C: leave no temporary file behind
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.replace(tmp, output)
    return output


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
            with _stderr_to(log, keep_sys_stderr=True):
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


# ----------------------------------------------------------------------------- records


def _jsonable(value):
    """numpy scalars/arrays and Paths as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def record(name: str, value) -> None:
    """Record a value in the notebook's output for the runner and the tests (shown as `name = value`)."""
    from IPython.display import display

    value = _jsonable(value)
    json.dumps(value)  # fail here, in the notebook, if it is not JSON
    display({RECORD_MIME: {"name": name, "value": value}, "text/plain": f"{name} = {value!r}"}, raw=True)


def read_records(notebook) -> dict:
    """Every value a notebook recorded with `record`, {name: value} (later records win).

    notebook: a path to an executed .ipynb or an nbformat NotebookNode.
    """
    import nbformat

    nb = notebook if not isinstance(notebook, (str, os.PathLike)) else nbformat.read(notebook, as_version=4)
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIME in data:
                item = data[RECORD_MIME]
                if isinstance(item, str):
                    item = json.loads(item)
                found[item["name"]] = item["value"]
    return found


# ----------------------------------------------------------------------------- notebook glue


MIN_VERSIONS = {"tensorflow": (2, 16), "keras": (3, 0), "numpy": (1, 26), "matplotlib": (3, 8)}


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        parts.append(int(digits or 0))
    return tuple(parts)


def setup(check: bool = True) -> str:
    """The setup cell's version check: one line of versions; PoseUtilsError if one is too old.

    Imports TensorFlow (a few seconds) so that its start-up happens here, not in a later cell.
    """
    import importlib

    import pose_utils

    versions = {"python": sys.version.split()[0], "pose_utils": pose_utils.__version__}
    for name in MIN_VERSIONS:
        versions[name] = importlib.import_module(name).__version__
    if check:
        old = [f"{name} {versions[name]} (need >= {'.'.join(map(str, low))})"
               for name, low in MIN_VERSIONS.items() if _version_tuple(versions[name]) < low]
        if old:
            raise PoseUtilsError(f"too old for these notebooks: {', '.join(old)}; run `make lab` to use the "
                                 "project's environment")
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def has_dataset(data_dir: str | os.PathLike) -> bool:
    """True when DATA_DIR holds both splits (HDF5 or the course's .npy files)."""
    from .data import validate_dir

    try:
        validate_dir(data_dir)
    except PoseUtilsError:
        return False
    return True


def ensure_data(data_dir: str | os.PathLike, preset: str = "tiny", seed: int = 0, generate: bool = True,
                progress: bool = True) -> Path:
    """DATA_DIR, after rendering the embedded dataset's `preset` into it if it holds no dataset yet.

    The data is rendered into a temporary folder beside DATA_DIR and renamed into place, so an
    interrupted run never leaves half a dataset. generate=False: DataError instead of rendering.
    """
    from . import synth

    data_dir = Path(data_dir)
    if has_dataset(data_dir):
        return data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        # Let the data module say precisely what is wrong with an existing folder.
        from .data import validate_dir

        validate_dir(data_dir)
    if not generate:
        raise DataError(f"{data_dir}: no dataset there; render one with "
                        f"`python -m pose_utils make-data --preset {preset} --out {data_dir}`")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.", dir=data_dir.parent))
    try:
        flags = SimpleNamespace(out=tmp, preset=preset, format="h5", seed=seed, workers=None, frame_size=None,
                                train_clips=None, valid_clips=None, front_cues=False)
        synth.generate(synth.config_from_args(flags), progress=progress)
        _flush_c_stdio()  # pybullet's C printf ("build time") belongs to this cell's output, not a later one
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a dataset folder is an ordinary one
        if data_dir.exists():
            data_dir.rmdir()  # empty (checked above)
        os.replace(tmp, data_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return data_dir


def _flush_c_stdio() -> None:
    """Flush the C library's stdout buffers (C extensions print through them, not through Python)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def prepare_run_dir(run_dir: str | os.PathLike, overwrite: bool = True) -> Path:
    """Make RUN_DIR ready for a fresh training run.

    A previous run folder there (it has config.json) is deleted when `overwrite`, else ConfigError; a
    non-empty folder that is not a run folder is never deleted (ConfigError).
    """
    run_dir = Path(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not (run_dir / "config.json").is_file():
            raise ConfigError(f"{run_dir} is not empty and is not a run folder; choose another run_dir")
        if not overwrite:
            raise ConfigError(f"{run_dir} already holds a run; set overwrite=True to replace it or "
                              "resume=True to continue it")
        # Rename first so that a crash half-way through deleting never leaves a half run under the name.
        doomed = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.old.", dir=run_dir.parent))
        os.replace(run_dir, doomed / run_dir.name)
        shutil.rmtree(doomed, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def ensure_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike, train_if_missing: bool = True,
               **config) -> Path:
    """RUN_DIR, after training a quick run there (TrainConfig(**config)) if it holds no trained model.

    Lets notebook 04 run on its own (nbval, a fresh clone); train_if_missing=False makes a missing run a
    DataError, which is what the runner wants after 03.
    """
    from .train import TrainConfig, train

    run_dir = Path(run_dir)
    if (run_dir / "model.keras").is_file():
        return run_dir
    if not train_if_missing:
        raise DataError(f"{run_dir}: no trained model (model.keras) there; run notebook 03 first or train "
                        f"with `python -m pose_utils train --data {data_dir} --out {run_dir}`")
    prepare_run_dir(run_dir, overwrite=True)
    train(data_dir, run_dir, TrainConfig(**config), progress=True)
    return run_dir


def layer_table(model) -> str:
    """The model's layers as a fixed-width text table: name, type, output shape (batch omitted), params.

    Deterministic (no memory addresses, no Keras version's box drawing), so notebooks can check it.
    """
    rows = [("layer", "type", "output shape", "params")]
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(layer.output.shape) if shape is not None else ()
        shape_text = "(B, " + ", ".join(str(s) for s in shape[1:]) + ")"
        rows.append((layer.name, type(layer).__name__, shape_text, f"{layer.count_params():,}"))
    rows.append(("total", "", "", f"{model.count_params():,}"))
    return text_table(rows, align="llll"[:3] + "r")


def text_table(rows, align: str | None = None) -> str:
    """Rows (first row = header) as an aligned plain-text table. align: one 'l' or 'r' per column."""
    rows = [[str(c) for c in row] for row in rows]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    align = align or "l" * len(widths)
    lines = []
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows) -> str:
    """Rows (first row = header) as a Markdown table (for IPython.display.Markdown)."""
    rows = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the sweep of notebook 05


def sweep_settings(factors: dict, base: dict) -> list[dict]:
    """One-factor-at-a-time settings, as in the report's discussion.

    factors: {"batch_size": [1, 5, 10], "learning_rate": [1e-4, 1e-3]}; base: the values of the other
    factors, e.g. {"batch_size": 5, "learning_rate": 1e-4}. Returns the distinct settings, each a dict
    holding every factor, in a stable order (the base setting first).
    """
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


def sweep(training_notebook: str | os.PathLike, sweep_dir: str | os.PathLike, settings: list[dict],
          fixed: dict, progress: bool = True) -> list[dict]:
    """Run the training notebook once per setting with papermill; collect each run's history.

    Each run goes to SWEEP_DIR/<setting name>/ (the executed notebook and its run/ folder); a setting whose
    run already finished there (history.json with `epochs` entries, same config) is reused, so an
    interrupted sweep continues. fixed: parameters every run gets (data_dir, epochs, clip limits, ...).
    Returns one dict per setting: the setting's values, "run_dir", "history", "seconds" (wall time of the
    run, ~0 when reused), "final_val_mpjpe", "best_val_mpjpe" (mm), "clips_per_second" (training speed
    of the last epoch); the list is also written to SWEEP_DIR/results.json.
    """
    from tqdm.auto import tqdm

    from .fileio import read_json

    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    accepted = notebook_parameters(training_notebook)
    for name in {k for s in settings for k in s} | set(fixed) | {"run_dir"}:
        if name not in accepted:
            raise ConfigError(f"{Path(training_notebook).name} has no parameter {name!r} to sweep or fix")
    results = []
    for setting in tqdm(settings, desc="sweep", unit="run", disable=not progress):
        name = _setting_name(setting)
        run_dir = sweep_dir / name / "run"
        params = {**fixed, **setting, "run_dir": str(run_dir.resolve()), "overwrite": True}
        params = {k: v for k, v in params.items() if k in accepted}
        tic = time.perf_counter()
        if not _finished(run_dir, params):
            (sweep_dir / name).mkdir(parents=True, exist_ok=True)
            # The run's kernel inherits our stderr: keep its TensorFlow start-up lines in a log file, not in
            # the output of the cell that runs the sweep.
            with _stderr_to(sweep_dir / name / "kernel-stderr.log"):
                execute_notebook(Path(training_notebook), sweep_dir / name / Path(training_notebook).name,
                                 params, progress=False)
        history = read_json(run_dir / "history.json")
        val = history.get("val_mpjpe") or [math.nan]
        speed = history.get("clips_per_second") or [math.nan]
        results.append({**setting, "run_dir": str(run_dir), "history": history,
                        "seconds": round(time.perf_counter() - tic, 1),
                        "final_val_mpjpe": float(val[-1]), "best_val_mpjpe": float(min(val)),
                        # the last epoch's speed: the first one includes tracing the compiled step
                        "clips_per_second": float(speed[-1])})
    write_json(sweep_dir / "results.json", results)
    return results


@contextlib.contextmanager
def _stderr_to(path: Path, keep_sys_stderr: bool = False):
    """Point file descriptor 2 of this process (which processes it starts inherit) at `path` for a while.

    keep_sys_stderr: Python's own sys.stderr (papermill's progress bar) keeps writing where fd 2 pointed
    before, so only the started processes' messages go to the file.
    """
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(2)
    try:
        with contextlib.ExitStack() as stack:
            with open(path, "ab") as log:
                os.dup2(log.fileno(), 2)
            if keep_sys_stderr:
                terminal = stack.enter_context(open(os.dup(saved), "w", buffering=1, errors="replace"))
                stack.enter_context(contextlib.redirect_stderr(terminal))
            yield
    finally:
        with contextlib.suppress(Exception):
            sys.__stderr__.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _finished(run_dir: Path, params: dict) -> bool:
    from .fileio import read_json

    try:
        config = read_json(run_dir / "config.json")
        history = read_json(run_dir / "history.json")
    except PoseUtilsError:
        return False
    if not (run_dir / "model.keras").is_file():
        return False
    same = all(config.get(k) == v for k, v in params.items() if k in config)
    if "data_dir" in params:
        try:
            trained_on = read_json(run_dir / "data.json").get("data_dir")
        except PoseUtilsError:
            return False
        same = same and trained_on == str(Path(params["data_dir"]).resolve())
    return same and len(history.get("val_mpjpe", [])) == config.get("epochs")


def sweep_rows(results: list[dict], factors=("batch_size", "learning_rate")) -> list[list]:
    """The sweep's results table: header + one row per run (factor values, final/best MPJPE, speed)."""
    header = [*factors, "final val MPJPE (mm)", "best val MPJPE (mm)", "train MPJPE (mm)", "clips/s",
              "seconds"]
    rows = [header]
    for r in results:
        train_mpjpe = (r["history"].get("train_mpjpe") or [math.nan])[-1]
        rows.append([*(f"{r[f]:g}" if isinstance(r[f], float) else r[f] for f in factors),
                     f"{r['final_val_mpjpe']:.1f}", f"{r['best_val_mpjpe']:.1f}", f"{train_mpjpe:.1f}",
                     f"{r['clips_per_second']:.1f}", f"{r['seconds']:.0f}"])
    return rows


# ----------------------------------------------------------------------------- committed notebooks stay small

CHECK_MARK = "NBVAL_CHECK_OUTPUT"
# Output kinds kept in a checked cell: plain text only (never images, HTML, widgets, records or stderr).
_KEPT_MIME = ("text/plain",)


def is_checked(cell) -> bool:
    """True for a code cell nbval compares in lax mode: a line `# NBVAL_CHECK_OUTPUT` (a whole-line
    comment, as nbval reads it) or the cell tag `nbval-check-output`."""
    tags = cell.get("metadata", {}).get("tags", [])
    lines = (line.strip() for line in cell.get("source", "").splitlines())
    marked = any(line.startswith("#") and line.lstrip("#").strip() == CHECK_MARK for line in lines)
    return cell.get("cell_type") == "code" and (marked or "nbval-check-output" in tags)


def _kept_outputs(outputs) -> list:
    import nbformat

    kept = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") == "stdout":
            if kept and kept[-1].get("output_type") == "stream":
                # one print may reach the notebook in several messages; nbval joins them too
                kept[-1]["text"] += out.get("text", "")
            else:
                kept.append(nbformat.v4.new_output("stream", name="stdout", text=out.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = {k: v for k, v in out.get("data", {}).items() if k in _KEPT_MIME}
            if data and RECORD_MIME not in out.get("data", {}):
                extra = {"execution_count": out.get("execution_count")} if kind == "execute_result" else {}
                kept.append(nbformat.v4.new_output(kind, data=data, **extra))
    return kept


def strip_notebook(nb, executed=None):
    """The notebook as committed: outputs only in checked cells (plain text, taken from `executed`, a
    run of the same notebook, when given), no execution counts elsewhere, no papermill metadata.
    Returns a new NotebookNode; `nb` is not modified."""
    import copy

    nb = copy.deepcopy(nb)
    ran = {}
    if executed is not None:
        ran = {c.get("id"): c for c in executed.cells if c.get("cell_type") == "code"}
    for cell in nb.cells:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if cell.get("cell_type") != "code":
            continue
        if is_checked(cell):
            source = ran.get(cell.get("id"), cell)
            cell["outputs"] = _kept_outputs(source.get("outputs", []))
            cell["execution_count"] = source.get("execution_count")
            for out in cell["outputs"]:
                if out.get("output_type") == "execute_result":
                    out["execution_count"] = cell["execution_count"]
        else:
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    return nb


def refresh_checked_outputs(notebook: str | os.PathLike, progress: bool = True) -> Path:
    """Run NOTEBOOK with its default parameters (in its folder, as nbval does) and store the outputs of its
    checked cells in it, every other output stripped. For whoever edits a notebook's checked cells:

        python -c "import pose_utils.notebooks as n; n.refresh_checked_outputs('notebooks/02_model.ipynb')"
    """
    import nbformat

    notebook = Path(notebook)
    with tempfile.TemporaryDirectory() as tmp:
        executed_path = execute_notebook(notebook, Path(tmp) / notebook.name, {}, progress=progress)
        executed = nbformat.read(executed_path, as_version=4)
    nb = strip_notebook(nbformat.read(notebook, as_version=4), executed)
    from .fileio import atomic_path

    with atomic_path(notebook) as out:
        nbformat.write(nb, str(out))
    return notebook


# ----------------------------------------------------------------------------- figures of a split


def spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them if k >= n): a sample that sees every part."""
    import numpy as np

    if n <= 0 or k <= 0:
        return []
    if k >= n:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, k).round()})


def frame_grid(store, n_clips: int = 4, frame_indices=(0, 3, 7), clips=None):
    """A contact sheet of a split: frames `frame_indices` of `n_clips` clips spread over it, with the
    labels projected onto them where the data stores the camera (`widgets.projected_joints`).
    Returns a Figure (`plots.contact_sheet`), one row per clip."""
    import numpy as np

    from .plots import contact_sheet
    from .widgets import clip_title, projected_joints

    clips = spread(len(store), n_clips) if clips is None else [int(c) for c in clips]
    frame_indices = [int(f) for f in frame_indices if 0 <= int(f) < store.num_frames]
    if not clips or not frame_indices:
        raise ConfigError("frame_grid needs at least one clip and one valid frame index")
    frames = store.read_frames(clips)[:, frame_indices]
    uv = [projected_joints(store, c) for c in clips]
    joints_2d = None if any(u is None for u in uv) else np.stack(uv)[:, frame_indices]
    titles = [f"{clip_title(store, c)} f{f}" if k == 0 else f"f{f}" for c in clips
              for k, f in enumerate(frame_indices)]
    return contact_sheet(frames.reshape(-1, *frames.shape[2:]),
                         None if joints_2d is None else joints_2d.reshape(-1, *joints_2d.shape[2:]),
                         titles=titles, ncols=len(frame_indices), panel_inches=2.0)


def skeleton_table() -> str:
    """The 17 joints as a text table: number (1-based, as in the report), name, parent, side."""
    from .skeleton import JOINT_NAMES, LEFT, PARENTS, RIGHT

    rows = [("joint", "name", "parent", "side")]
    for j, name in enumerate(JOINT_NAMES):
        parent = JOINT_NAMES[PARENTS[j]] if PARENTS[j] >= 0 else "-"
        side = "left" if j in LEFT else "right" if j in RIGHT else "centre"
        rows.append((j + 1, name, parent, side))
    return text_table(rows, align="rlll")


def bone_table(joints) -> str:
    """Bone lengths of labels (..., 17, 3) metres: mean, std and range per bone in mm, as a text table.

    A rigid skeleton keeps each bone's length; a spread shows several subjects (body sizes) in the data.
    """
    import numpy as np

    from .skeleton import BONES, JOINT_NAMES, bone_lengths

    lengths = bone_lengths(np.asarray(joints, dtype=np.float64)).reshape(-1, len(BONES)) * 1000.0
    rows = [("bone", "mean (mm)", "std (mm)", "min (mm)", "max (mm)")]
    for b, (child, parent) in enumerate(BONES):
        x = lengths[:, b]
        rows.append((f"{JOINT_NAMES[parent]}-{JOINT_NAMES[child]}", f"{x.mean():.0f}", f"{x.std():.1f}",
                     f"{x.min():.0f}", f"{x.max():.0f}"))
    return text_table(rows, align="lrrrr")


# ----------------------------------------------------------------------------- training and evaluation glue


def history_table(history: dict) -> str:
    """A run's history (history.json) as a text table, one row per epoch: losses (eq. 2, target space),
    MPJPE in mm (eq. 3), seconds and training clips per second."""
    import math

    columns = (("train_loss", "train loss", "{:.5f}"), ("val_loss", "val loss", "{:.5f}"),
               ("train_mpjpe", "train MPJPE (mm)", "{:.1f}"), ("val_mpjpe", "val MPJPE (mm)", "{:.1f}"),
               ("epoch_seconds", "seconds", "{:.1f}"), ("clips_per_second", "clips/s", "{:.1f}"))
    n = max((len(history.get(k) or []) for k, _, _ in columns), default=0)
    rows = [("epoch", *(label for _, label, _ in columns))]
    for e in range(n):
        row = [e + 1]
        for key, _, fmt in columns:
            values = history.get(key) or []
            row.append(fmt.format(values[e]) if e < len(values) and not math.isnan(values[e]) else "-")
        rows.append(row)
    return text_table(rows, align="r" * len(rows[0]))


def mean_pose_baseline_mm(run_dir: str | os.PathLike, data_dir: str | os.PathLike, split: str = "valid",
                          max_clips: int | None = None) -> float:
    """MPJPE (mm) of the run's baseline that predicts the mean training pose for every frame of `split`.

    The bar a trained model must clear: a model below it has learnt something from the images.
    max_clips: the same evenly spread subset of clips the run validated on (TrainConfig.max_valid_clips).
    """
    import numpy as np

    from .data import open_split
    from .fileio import read_json
    from .metrics import mpjpe
    from .train import read_mean_pose, subset

    units = read_json(Path(run_dir) / "config.json").get("units", "m")
    with open_split(data_dir, split, units) as store:
        joints = np.asarray(store.joints)[subset(len(store), max_clips)]
    mean = read_mean_pose(run_dir)
    return 1000.0 * mpjpe(joints, np.broadcast_to(mean, joints.shape))


def baseline_metrics(run_dir: str | os.PathLike, y_true_m, meta: dict | None = None) -> dict:
    """Every evaluation number (evaluate.compute_metrics) for the run's mean-pose baseline: the mean
    training pose (RUN/mean_pose.json) predicted for every frame. y_true_m: (N, 8, 17, 3) metres."""
    import numpy as np

    from .evaluate import compute_metrics
    from .train import read_mean_pose

    y_true = np.asarray(y_true_m, dtype=np.float64)
    mean = read_mean_pose(run_dir)
    return compute_metrics(y_true, np.broadcast_to(mean, y_true.shape), meta=meta)


METRIC_ROWS = (
    ("mpjpe_mm", "MPJPE, Protocol 1 (eq. 3)", "mm", "{:.1f}"),
    ("p_mpjpe_mm", "P-MPJPE, Protocol 2 (after Procrustes alignment)", "mm", "{:.1f}"),
    ("n_mpjpe_mm", "N-MPJPE (after scale alignment)", "mm", "{:.1f}"),
    ("mpjve_mm", "MPJVE (velocity error per frame)", "mm", "{:.1f}"),
    ("pck3d_150mm", "3D PCK at 150 mm", "%", "{:.1f}"),
    ("auc", "AUC of PCK, 0-150 mm", "%", "{:.1f}"),
)


def metrics_rows(model: dict, baseline: dict | None = None) -> list[list[str]]:
    """The headline metrics of a model (and of the baseline beside it) as table rows (first row header).

    model, baseline: metrics dicts (evaluate.compute_metrics / metrics.json). Fractions become percent.
    """
    rows = [["metric", "model", *(["mean-pose baseline"] if baseline else []), "unit"]]
    for key, label, unit, fmt in METRIC_ROWS:
        if key not in model:
            continue
        scale = 100.0 if unit == "%" else 1.0
        row = [label, fmt.format(model[key] * scale)]
        if baseline:
            row.append(fmt.format(baseline[key] * scale) if key in baseline else "-")
        rows.append([*row, unit])
    return rows


def per_joint_table_rows(model: dict, baseline: dict | None = None) -> list[list[str]]:
    """The report's per-joint table beside ours: joint number, name, this model, [baseline,] report (mm)."""
    from .plots import per_joint_rows

    rows = per_joint_rows(model["per_joint_mpjpe_mm"],
                          baseline_mm=None if baseline is None else baseline["per_joint_mpjpe_mm"])
    header = ["joint", "name", "this model (mm)", *(["mean-pose baseline (mm)"] if baseline else []),
              "report (mm)"]
    table = [header]
    for r in rows:
        table.append([str(r["joint"]), r["name"], f"{r['mpjpe_mm']:.1f}",
                      *([f"{r['baseline_mm']:.1f}"] if baseline else []), f"{r['report_mm']:.2f}"])
    return table


def group_rows(model: dict, baseline: dict | None, key: str) -> list[list[str]]:
    """Per-group MPJPE rows (key: "per_action_mpjpe_mm", "per_camera_mpjpe_mm", ...), model vs baseline."""
    groups = model.get(key) or {}
    header = [key.split("_")[1], "model (mm)", *(["mean-pose baseline (mm)"] if baseline else [])]
    rows = [header]
    for g, v in groups.items():
        rows.append([g, f"{v:.1f}", *([f"{baseline[key][g]:.1f}"] if baseline and g in baseline.get(key, {})
                                      else ["-"] if baseline else [])])
    return rows


def pick_clips(y_true, y_pred, k: int = 3) -> list[int]:
    """k clip indices from the best to the worst by MPJPE (best, ..., median, ..., worst), for showing
    what a model gets right and wrong. y_true, y_pred: (N, T, 17, 3)."""
    import numpy as np

    errors = np.linalg.norm(np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64), axis=-1)
    order = np.argsort(errors.reshape(len(errors), -1).mean(axis=1), kind="stable")
    if k >= len(order):
        return [int(i) for i in order]
    return [int(order[i]) for i in np.linspace(0, len(order) - 1, k).round().astype(int)]


def runs_varying(results: list[dict], factor: str, base: dict) -> list[dict]:
    """The sweep results that vary `factor` while every other factor of `base` keeps its base value,
    sorted by the factor (the runs of one curve of a one-factor-at-a-time sweep)."""
    chosen = [r for r in results if all(r.get(k) == v for k, v in base.items() if k != factor)]
    return sorted(chosen, key=lambda r: r[factor])
