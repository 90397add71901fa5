"""The notebooks, run the way instructors run them (pyhf style): papermill into tmp_path with the quick
parameters, then assertions on what each notebook recorded and wrote. Plus the runner's error paths on
small synthetic notebooks, and the hygiene of the committed notebooks (graders run nbval on them).

The quick run is the one execution of the six notebooks in `make test`: the fixture leaves its executed
copies on the session's config (stored_outputs.SESSION_EXECUTED), and nbval's items for the committed
notebooks, collected later in the same session (`pytest tests notebooks --nbval-lax`), check those copies by
nbval's own rules instead of executing every notebook again (notebooks/conftest.py). The tests that need
that run are marked `slow` (`make test-fast` leaves them out)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pytest

import pose_course as course
from pose_course import execute, runner, stored_outputs
from pose_utils import plots
from pose_utils.errors import ConfigError, DataError, PoseUtilsError
from pose_utils.fileio import read_json

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NAMES = ["01_data", "02_model", "03_training", "04_evaluation", "05_experiments", "06_challenge"]


# ----------------------------------------------------------------------------- the quick run


slow = pytest.mark.slow  # executes the six notebooks (minutes)


@pytest.fixture(scope="module")
def quick(tmp_path_factory, tiny_data_dir, pytestconfig):
    """`run-notebooks --quick` on the session's tiny dataset: every notebook once, chained. Its executed
    copies are also what nbval checks later in the session (notebooks/conftest.py)."""
    out = tmp_path_factory.mktemp("quick")
    summary = runner.run_notebooks(NOTEBOOK_DIR, out, quick=True,
                                   parameters={"data_dir": str(tiny_data_dir)}, progress=False)
    names = [nb["name"] for nb in summary["notebooks"]]
    executed = {str((NOTEBOOK_DIR / name).resolve()): str(out / name) for name in names}
    setattr(pytestconfig, stored_outputs.SESSION_EXECUTED, executed)
    return out, summary


def _outputs(nb, kind=None):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if kind is None or out.get("output_type") == kind:
                yield cell, out


def _images(nb) -> int:
    return sum(1 for _, out in _outputs(nb) if {"image/png", "image/gif"} & set(out.get("data", {})))


@slow
def test_every_notebook_ran_in_order_without_errors(quick):
    out, summary = quick
    assert [nb["name"] for nb in summary["notebooks"]] == [f"{n}.ipynb" for n in NAMES]
    assert read_json(out / "summary.json")["notebooks"][-1]["name"] == "06_challenge.ipynb"
    for name in NAMES:
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        assert not list(_outputs(nb, "error")), name
        # JupyterLab shows a stderr stream as a pink box (the browser test runs 01-04 only)
        stderr = [o.get("text", "")[:200] for _, o in _outputs(nb, "stream") if o.get("name") == "stderr"]
        assert not stderr, (name, stderr)
        assert not list(out.glob(f".{name}*")), "temporary notebook left behind"


@slow
def test_executed_copies_reproduce_the_committed_checked_outputs(quick):
    """What nbval compares for a grader, compared here on the quick run's executed copies."""
    out, _ = quick
    for name in NAMES:
        committed = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        executed = {c.get("id"): c for c in nbformat.read(out / f"{name}.ipynb", as_version=4).cells}
        for cell in committed.cells:
            if stored_outputs.is_checked(cell):
                ran = executed[cell["id"]]
                ran = stored_outputs.strip_notebook(nbformat.v4.new_notebook(cells=[ran])).cells[0]
                got, stored = [o.get("text") for o in ran.outputs], [o.get("text") for o in cell.outputs]
                assert got == stored, f"{name}, cell {cell['id']}: ran {got!r}, committed {stored!r}"


@slow
def test_01_data_shows_the_tiny_dataset(quick, tiny_data_dir):
    out, summary = quick
    records = summary["notebooks"][0]["records"]
    assert records["clips"] == {"train": 32, "valid": 16}
    assert records["frame_size"] == 64
    assert records["data_dir"] == str(Path(tiny_data_dir).resolve())
    nb = nbformat.read(out / "01_data.ipynb", as_version=4)
    assert _images(nb) >= 4  # frame grid, 3-D clip, label statistics, scrubber's static figure
    widgets = [o for _, o in _outputs(nb) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the scrubber widget is displayed"


@slow
def test_02_model_records_the_reports_parameter_count(quick):
    _, summary = quick
    assert summary["notebooks"][1]["records"]["parameters"] == 77_455_233


@slow
def test_03_training_writes_the_run_that_04_reads(quick):
    out, summary = quick
    records = summary["notebooks"][2]["records"]
    run = out / "run"
    assert records["run_dir"] == str(run)
    history = read_json(run / "history.json")
    assert len(history["val_mpjpe"]) == records["epochs"] == 2
    assert records["final_val_mpjpe_mm"] == pytest.approx(history["val_mpjpe"][-1])
    assert (run / "model.keras").is_file() and (run / "figures" / "history.png").stat().st_size > 0
    # the baseline line of Figure 4 is the mean training pose's error on the validation clips
    from pose_utils import data, metrics
    from pose_utils.training import read_mean_pose

    with data.open_split(read_json(run / "data.json")["data_dir"], "valid") as valid:
        y = np.asarray(valid.joints, np.float64)
    expected = 1000 * metrics.mpjpe(y, np.broadcast_to(read_mean_pose(run), y.shape))
    assert records["val_baseline_mpjpe_mm"] == pytest.approx(expected)
    nb = nbformat.read(out / "03_training.ipynb", as_version=4)
    assert _images(nb) == 1  # Figures 1-4 in one 2x2 figure


@slow
def test_04_evaluation_measures_that_run(quick):
    out, summary = quick
    records = summary["notebooks"][3]["records"]
    ev = out / "evaluation"
    result = read_json(ev / "metrics.json")
    assert records["metrics_json"] == str(ev / "metrics.json")
    assert result["run_dir"] == str(out / "run")
    for key in ("mpjpe_mm", "p_mpjpe_mm", "baseline_mean_pose_mpjpe_mm", "epochs"):
        assert records[key] == pytest.approx(result[key])
    assert records["beats_baseline"] == (result["mpjpe_mm"] < result["baseline_mean_pose_mpjpe_mm"])
    with np.load(ev / "predictions.npz") as saved:
        assert saved["y_pred"].shape == saved["y_true"].shape == (16, 8, 17, 3)
    for name in ("per_joint.png", "skeletons.png"):
        assert (ev / name).stat().st_size > 0
    (gif,) = ev.glob("clip_*.gif")
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 8
    nb = nbformat.read(out / "04_evaluation.ipynb", as_version=4)
    # per-joint bars, per-action, per-camera, skeletons, the animation, the scrubber's static figure
    assert _images(nb) >= 6
    tables = [o["data"]["text/markdown"] for _, o in _outputs(nb) if "text/markdown" in o.get("data", {})]
    assert any("| 17 | RWrist |" in t and "186.93" in t for t in tables), "the report's table beside ours"


@slow
def test_05_experiments_sweeps_the_training_notebook(quick):
    out, summary = quick
    records = summary["notebooks"][4]["records"]
    sweep = out / "experiments"
    results = read_json(sweep / "results.json")
    assert records["sweep_runs"] == len(results) == 3
    assert {(r["batch_size"], r["learning_rate"]) for r in results} == {(5, 1e-4), (1, 1e-4), (5, 1e-3)}
    for r in results:
        history = read_json(Path(r["run_dir"]) / "history.json")
        assert len(history["val_mpjpe"]) == 2
        assert r["final_val_mpjpe"] == pytest.approx(history["val_mpjpe"][-1])
        config = read_json(Path(r["run_dir"]) / "config.json")
        assert (config["batch_size"], config["learning_rate"]) == (r["batch_size"], r["learning_rate"])
        assert config["max_train_clips"] == 20
    best = min(results, key=lambda r: r["final_val_mpjpe"])
    assert records["sweep_best"]["final_val_mpjpe"] == pytest.approx(best["final_val_mpjpe"])
    nb = nbformat.read(out / "05_experiments.ipynb", as_version=4)
    assert _images(nb) == 3
    stderr = [o for _, o in _outputs(nb, "stream") if o.get("name") == "stderr"]
    assert not any("IPKernelApp" in o["text"] for o in stderr), "child kernels' stderr goes to a log file"


# ----------------------------------------------------------------------------- the runner on small notebooks


def _notebook(path: Path, parameters: str, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# test"),
                nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def small_notebooks(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    record = "from pose_course import record\n"
    _notebook(folder / "01_a.ipynb", "a = 1\nrun_dir = 'nowhere'",
              record + "record('a', a)\nrecord('run_dir', run_dir)")
    _notebook(folder / "02_b.ipynb", "b = 'x'", record + "record('b', b)\nrecord('has_a', 'a' in dir())")
    return folder


def test_parameters_go_only_to_the_notebooks_that_take_them(small_notebooks, tmp_path):
    out = tmp_path / "out"
    summary = runner.run_notebooks(small_notebooks, out, quick=True,
                                      parameters={"a": 2.5, "b": [1, 2]}, progress=False)
    first, second = (nb["records"] for nb in summary["notebooks"])
    assert first == {"a": 2.5, "run_dir": str((out / "run").resolve())}  # chained path given by the runner
    assert second == {"b": [1, 2], "has_a": False}
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "01_a.ipynb").stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not private


def test_kernel_c_level_stderr_goes_to_a_log_not_the_terminal(small_notebooks, tmp_path, capfd):
    noise = "import os\nos.write(2, b'E0000 C-level noise\\n')"  # as TensorFlow's C++ logging writes
    _notebook(small_notebooks / "03_noise.ipynb", "c = 0", noise)
    out = tmp_path / "out"
    runner.run_notebooks(small_notebooks, out, progress=True)
    captured = capfd.readouterr()
    assert "C-level noise" not in captured.err + captured.out
    assert (out / "logs" / "03_noise.stderr.log").read_text().count("E0000 C-level noise") == 1


def test_stderr_redirect_keeps_this_processes_own_messages_on_the_terminal(tmp_path, capfd):
    log = tmp_path / "child.log"
    with execute.stderr_to(log, keep_sys_stderr=True):
        print("parent message", file=sys.stderr)  # e.g. papermill's progress bar
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b'child message\\n')"], check=True)
    captured = capfd.readouterr()
    assert "parent message" in captured.err and "child message" not in captured.err
    assert log.read_text() == "child message\n"


def test_a_failing_cell_is_one_message_naming_notebook_and_cell(small_notebooks, tmp_path):
    _notebook(small_notebooks / "03_fails.ipynb", "c = 0", "x = 1", "raise ValueError('boom')")
    out = tmp_path / "out"
    with pytest.raises(PoseUtilsError) as err:
        runner.run_notebooks(small_notebooks, out, progress=False)
    message = str(err.value)
    assert "03_fails.ipynb" in message and "ValueError: boom" in message
    # counted from 1 over all cells (markdown too), with the prompt number JupyterLab shows
    assert "cell #4 (In [3]" in message and "raise ValueError" in message
    assert f"the kernel's own messages: {out / 'logs' / '03_fails.stderr.log'}" in message
    failed = nbformat.read(out / "03_fails.ipynb", as_version=4)  # kept, with the error, for a look
    assert any(o.get("ename") == "ValueError" for _, o in _outputs(failed, "error"))
    assert (out / "01_a.ipynb").is_file() and (out / "02_b.ipynb").is_file()


def test_a_data_error_wrapped_by_tensorflow_in_a_cell_is_reported_plainly(small_notebooks, tmp_path):
    """tf.data reads batches inside tf.numpy_function: a DataError raised there reaches the cell as a
    TensorFlow error with a long message; the runner names the DataError and its message only."""
    cell = (
        "import tensorflow as tf\n"
        "from pose_utils.errors import DataError\n"
        "def read(i):\n"
        "    raise DataError('data/train.h5: cannot read clips 2..5, the file is corrupt')\n"
        "ds = tf.data.Dataset.range(3).map(lambda i: tf.numpy_function(read, [i], tf.int64))\n"
        "for x in ds:\n"
        "    pass"
    )
    _notebook(small_notebooks / "03_damaged.ipynb", "c = 0", cell)
    with pytest.raises(PoseUtilsError) as err:
        runner.run_notebooks(small_notebooks, tmp_path / "out", progress=False)
    message = str(err.value)
    assert "raised DataError: data/train.h5: cannot read clips 2..5, the file is corrupt; " in message
    assert "Traceback" not in message and "numpy_function" not in message and "UnknownError" not in message
    failed = nbformat.read(tmp_path / "out" / "03_damaged.ipynb", as_version=4)
    assert any(o.get("ename") != "DataError" for _, o in _outputs(failed, "error"))  # TensorFlow's wrapper


def test_bad_runner_input_is_a_config_error(small_notebooks, tmp_path):
    with pytest.raises(ConfigError, match="no notebook has a parameter named nope; known parameters: a, b"):
        runner.run_notebooks(small_notebooks, tmp_path / "out", parameters={"nope": 1}, progress=False)
    with pytest.raises(ConfigError, match="notebook folder not found"):
        runner.run_notebooks(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ConfigError, match="no numbered notebooks"):
        runner.run_notebooks(tmp_path, tmp_path / "out")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, str(tmp_path / "07_x.ipynb"))
    with pytest.raises(ConfigError, match="no cell is tagged 'parameters'"):
        execute.notebook_parameters(tmp_path / "07_x.ipynb")


def test_command_line_reports_a_bad_parameter_plainly(small_notebooks, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pose_utils", "run-notebooks", "--out", str(tmp_path / "o"), "--notebooks",
         str(small_notebooks), "-p", "nope", "1"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no notebook has a parameter named nope")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("text, value", [
    ("5", 5), ("1e-4", 1e-4), ("0.5", 0.5), ("true", True), ("False", False), ("none", None), ("null", None),
    ("[1, 5, 10]", [1, 5, 10]), ('{"a": 1}', {"a": 1}), ("runs/seed", "runs/seed"), ("cnn_lstm", "cnn_lstm"),
    ('"5"', "5"), ("NaN", "NaN"),
])
def test_parameter_values_are_parsed(text, value):
    assert runner.parse_value(text) == value and type(runner.parse_value(text)) is type(value)


def test_demo_plan_chains_paths_and_keeps_sweep_settings_apart(tmp_path):
    steps = dict(runner.plan(runner.discover(NOTEBOOK_DIR), tmp_path, quick=False, given={"epochs": 3}))
    by_name = {nb.stem: params for nb, params in steps.items()}
    assert by_name["03_training"]["epochs"] == 3  # -p wins over the demo's own value
    assert by_name["03_training"]["model"] == runner.DEMO_PARAMETERS["03"]["model"]
    assert by_name["05_experiments"]["sweep_model"] == "seed"
    assert by_name["03_training"]["run_dir"] == by_name["04_evaluation"]["run_dir"] == str(tmp_path / "run")
    assert by_name["04_evaluation"]["train_if_missing"] is False
    assert "epochs" not in by_name["05_experiments"]  # the sweep has its own sweep_epochs
    assert by_name["05_experiments"]["training_notebook"] == str(NOTEBOOK_DIR / "03_training.ipynb")
    assert by_name["02_model"] == {}  # the report's model, whatever the demo trains
    for params in by_name.values():
        for key in ("data_dir", "run_dir", "eval_dir", "sweep_dir"):
            if key in params:
                assert Path(params[key]).is_absolute()


# ----------------------------------------------------------------------------- glue


def test_ensure_data_renders_once_and_refuses_a_foreign_folder(tmp_path):
    data_dir = course.ensure_data(tmp_path / "tiny", preset="tiny", progress=False)
    assert sorted(p.name for p in data_dir.iterdir()) == ["contact_sheet.png", "train.h5", "valid.h5"]
    stamp = (data_dir / "train.h5").stat().st_mtime_ns
    assert course.ensure_data(data_dir, preset="tiny", progress=False) == data_dir
    assert (data_dir / "train.h5").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no temporary folder left
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "readme.txt").write_text("mine")
    with pytest.raises(DataError):
        course.ensure_data(foreign)
    with pytest.raises(DataError, match="make-data --preset small"):
        course.ensure_data(tmp_path / "empty", preset="small", generate=False)


def test_setup_names_what_is_too_old(monkeypatch):
    from pose_course import provision

    monkeypatch.setattr(provision, "MIN_VERSIONS", {"numpy": "1.26"})
    assert ", numpy " in course.setup()
    monkeypatch.setattr(provision, "MIN_VERSIONS", {"numpy": "99.0"})
    with pytest.raises(PoseUtilsError, match=r"too old for these notebooks: numpy \S+ \(need >= 99.0\)"):
        course.setup()
    assert "numpy" in course.setup(check=False)


def test_prepare_run_dir_replaces_only_run_folders(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    assert course.prepare_run_dir(run) == run and list(run.iterdir()) == []
    (run / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds a run"):
        course.prepare_run_dir(run, overwrite=False)
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("keep me")
    with pytest.raises(ConfigError, match="not a run folder"):
        course.prepare_run_dir(other)
    assert (other / "chapter1.tex").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "thesis"]


def test_sweep_settings_are_one_factor_at_a_time():
    settings = course.sweep_settings({"batch_size": [1, 5, 10], "learning_rate": [1e-4, 1e-3]},
                                        {"batch_size": 5, "learning_rate": 1e-4})
    assert settings == [{"batch_size": 5, "learning_rate": 1e-4}, {"batch_size": 1, "learning_rate": 1e-4},
                        {"batch_size": 10, "learning_rate": 1e-4}, {"batch_size": 5, "learning_rate": 1e-3}]
    results = [{**s, "x": i} for i, s in enumerate(settings)]
    base = {"batch_size": 5, "learning_rate": 1e-4}
    assert [r["batch_size"] for r in course.runs_varying(results, "batch_size", base)] == [1, 5, 10]
    by_rate = course.runs_varying(results, "learning_rate", base)
    assert [r["learning_rate"] for r in by_rate] == [1e-4, 1e-3]
    with pytest.raises(ConfigError, match="needs a base value"):
        course.sweep_settings({"epochs": [1]}, base)
    with pytest.raises(ConfigError, match="non-empty list"):
        course.sweep_settings({"batch_size": []}, base)
    # with seeds: every setting once per seed, a curve's runs sorted by the factor, then the seed
    seeded = course.sweep_settings({"batch_size": [1, 5]}, base, seeds=[0, 1])
    assert [(s["batch_size"], s["seed"]) for s in seeded] == [(5, 0), (5, 1), (1, 0), (1, 1)]
    runs = [{**s, "history": {"val_mpjpe": [300.0 - i]}, "run_dir": "r", "final_val_mpjpe": 300.0 - i,
             "best_val_mpjpe": 300.0 - i, "clips_per_second": 1.0, "seconds": 1.0}
            for i, s in enumerate(seeded)]
    assert [(r["batch_size"], r["seed"]) for r in course.runs_varying(runs, "batch_size", base)] == \
           [(1, 0), (1, 1), (5, 0), (5, 1)]
    assert course.sweep_rows(runs)[0][:3] == ["batch_size", "learning_rate", "seed"]
    fig = plots.plot_sweep(course.runs_varying(runs, "batch_size", base), "batch_size")
    right = fig.axes[1]
    assert [t.get_text() for t in right.get_xticklabels()] == ["1", "5"]  # one column per setting
    assert list(right.lines[0].get_xdata()) == [0, 0, 1, 1]  # both seeds of a setting in its column
    for bad in ([], [1, 1], 3):
        with pytest.raises(ConfigError, match="distinct seeds"):
            course.sweep_settings({"batch_size": [1]}, base, seeds=bad)


def test_tables_and_clip_picking():
    table = course.text_table([("a", "bb"), (1, 22), (333, 4)], align="rl")
    assert table.splitlines() == ["  a  bb", "---  --", "  1  22", "333  4"]
    assert course.markdown_table([["x", "y|z"], [1, 2]]) == "| x | y\\|z |\n|---|---|\n| 1 | 2 |"
    y = np.zeros((5, 8, 17, 3))
    pred = y + np.array([0.05, 0.01, 0.03, 0.02, 0.04])[:, None, None, None]
    assert course.pick_clips(y, pred, k=3) == [1, 2, 0]  # best, median, worst
    lines = course.skeleton_table().splitlines()
    assert lines[2].split() == ["1", "Pelvis", "-", "centre"]
    assert lines[-1].split() == ["17", "RWrist", "RElbow", "right"]
    history = {"train_loss": [0.5, 0.25], "val_loss": [0.6, 0.3], "train_mpjpe": [100.0, 50.0],
               "val_mpjpe": [110.0, 60.0], "epoch_seconds": [2.0, 1.0], "clips_per_second": [5.0, 10.0]}
    assert course.history_table(history).splitlines()[-1].split() == ["2", "0.25000", "0.30000", "50.0",
                                                                         "60.0", "1.0", "10.0"]


def test_metric_rows_put_the_baseline_beside_the_model():
    model = {"mpjpe_mm": 100.0, "p_mpjpe_mm": 50.0, "pck3d_150mm": 0.75}
    rows = course.metrics_rows(model, {"mpjpe_mm": 200.0, "p_mpjpe_mm": 80.0, "pck3d_150mm": 0.5})
    assert rows[0] == ["metric", "model", "mean-pose baseline", "unit"]
    assert rows[1][1:] == ["100.0", "200.0", "mm"] and rows[-1][1:] == ["75.0", "50.0", "%"]


# ----------------------------------------------------------------------------- the committed notebooks


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_small_and_gradable(name):
    path = NOTEBOOK_DIR / f"{name}.ipynb"
    assert path.stat().st_size < 40_000
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {name[:2]} ·")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    assert code[1].source.startswith("%matplotlib inline") and "course.setup()" in code[1].source
    assert "def " not in "".join(c.source for c in code), "logic belongs in pose_utils"
    setup_lines = code[1].source.splitlines()
    ours = next(i for i, line in enumerate(setup_lines) if re.match(r"(from|import) pose_utils\b", line))
    assert not any(re.match(r"(from|import) (keras|tensorflow)\b", line) for line in setup_lines[:ours]), \
        "pose_utils is imported first: it sets TensorFlow's CPU settings, read when TensorFlow is imported"
    params = execute.notebook_parameters(path)
    for key in ("data_dir", "run_dir", "eval_dir", "sweep_dir", "training_notebook"):
        if key in params:  # None: the repository's outputs/nbval/... from any folder (course/paths.py)
            assert params[key] == "None", f"{name}: {key} defaults to {params[key]}, not None"
    checked = 0
    for cell in code:
        if stored_outputs.is_checked(cell):
            checked += 1
            assert cell.outputs
            assert all(o.output_type == "stream" and o.name == "stdout" for o in cell.outputs)
        else:
            assert not cell.outputs and cell.execution_count is None
    assert checked >= 1


@pytest.mark.parametrize("name", NAMES)
def test_paired_text_form_matches_the_notebook(name):
    """notebooks/text/NN_name.md (jupytext) holds the same cells: `jupytext --sync` was run."""
    ipynb = jupytext.read(NOTEBOOK_DIR / f"{name}.ipynb")
    text = jupytext.read(NOTEBOOK_DIR / "text" / f"{name}.md")
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,text//md"

    def cells(nb):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]

    assert cells(ipynb) == cells(text)


def test_strip_keeps_only_the_text_of_checked_cells():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=3, outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="1"),
            nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
            nbformat.v4.new_output("stream", name="stdout", text="\n"),  # the same print, in two messages
            nbformat.v4.new_output("display_data", data={"image/png": "AAAA", "text/plain": "<Figure>"})]),
        nbformat.v4.new_code_cell("fig", execution_count=4, outputs=[
            nbformat.v4.new_output("display_data", data={"image/png": "AAAA"})]),
    ])
    nb.metadata["papermill"] = {"x": 1}
    stripped = stored_outputs.strip_notebook(nb)
    first, second = stripped.cells
    assert [o.get("text", o.get("data")) for o in first.outputs] == ["1\n", {"text/plain": "<Figure>"}]
    assert second.outputs == [] and second.execution_count is None
    assert "papermill" not in stripped.metadata and nb.metadata["papermill"] == {"x": 1}
    assert json.loads(nbformat.writes(stripped))  # still a valid notebook
