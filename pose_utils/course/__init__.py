"""The course around the core: what the numbered notebooks call, the papermill runner behind
`python -m pose_utils run-notebooks`, and the tools that keep the committed notebooks gradable.

A notebook holds no logic of its own; each of its steps is one call here (`from pose_utils import course`):

    paths        `default_dir`, `notebook_path`, `outputs_root`: the defaults of the path parameters
    provision    `setup()` (the setup cell's version check), `ensure_data`, `prepare_run_dir`, `ensure_run`
    records      `record` (a value for the runner and the tests), `read_records`
    tables       text and Markdown tables: skeleton, bones, layers, epochs, metrics, the per-joint table
    figures      `frame_grid` (a split's contact sheet), `pick_clips` (best, median, worst)
    baselines    the mean-pose baseline of notebooks 03 and 04 (`mean_pose_baseline_mm`, `baseline_metrics`)
    experiments  notebook 05's sweep of notebook 03 (`sweep_settings`, `sweep`, `sweep_rows`, `runs_varying`)

and, not imported here:

    execute      one notebook through papermill (`execute_notebook`, `notebook_parameters`, `stderr_to`)
    runner       `run-notebooks`: discover, plan, execute in order, summary.json (`run_notebooks`, `main`)
    nbval        `strip_notebook`, `refresh_checked_outputs`: the committed notebooks
    cells        the cell contract: `is_checked`, `check_metadata`, the tags and the nbval marker

Light to import: TensorFlow, papermill and nbformat load inside the functions that need them.
"""

from .baselines import baseline_metrics, mean_pose_baseline_mm
from .experiments import runs_varying, sweep, sweep_rows, sweep_settings
from .figures import frame_grid, pick_clips
from .paths import default_dir, notebook_path, outputs_root
from .provision import ensure_data, ensure_run, has_dataset, prepare_run_dir, setup
from .records import RECORD_MIME, read_records, record
from .tables import (
    bone_table,
    history_table,
    layer_table,
    markdown_table,
    metrics_rows,
    per_joint_table_rows,
    skeleton_table,
    text_table,
)

__all__ = [
    "RECORD_MIME", "baseline_metrics", "bone_table", "default_dir", "notebook_path", "outputs_root",
    "ensure_data", "ensure_run", "frame_grid",
    "has_dataset", "history_table", "layer_table", "markdown_table", "mean_pose_baseline_mm",
    "metrics_rows", "per_joint_table_rows", "pick_clips", "prepare_run_dir", "read_records", "record",
    "runs_varying", "setup", "skeleton_table", "sweep", "sweep_rows", "sweep_settings", "text_table",
]
