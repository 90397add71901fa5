"""pose_course: the scaffolding that runs the course around the subject (`pose_utils`). Shipped to
students, not written by them: the notebooks' facade, the command line, the papermill runner, `make check`
and `make lab`, the dataset generator and the model comparison. The instructor's tools (release, grading,
sandbox, their tests and benchmarks) live in `pose_course/instructor/`, the one folder the release leaves
out.

A notebook holds no logic of its own; each of its steps is one call here (`import pose_course as course`):

    paths        `default_dir`, `notebook_path`, `outputs_root`: the defaults of the path parameters
    provision    `setup()` (the setup cell's version check), `ensure_data`, `prepare_run_dir`, `ensure_run`
    records      `record` (a value for the runner and the tests), `read_records`
    tables       text and Markdown tables: skeleton, bones, layers, epochs, metrics, the per-joint table
    sweep        notebook 05's sweep of notebook 03 (`sweep_settings`, `sweep`, `sweep_rows`, `runs_varying`)
    challenge    notebook 06's hand-in: `hand_in_run` copies a finished run to `CHALLENGE_RUN`
    and, from the subject: `frame_grid`, `pick_clips` (pose_utils.plots.picks), the mean-pose baseline's
    numbers `mean_pose_baseline_mm`, `baseline_metrics` (pose_utils.evaluate)

and, not imported here:

    cli            `python -m pose_utils COMMAND` / `pose-utils COMMAND`: the commands and their flags
    cells          THE check-cell contract: tags, nbgrader metadata, the nbval marker, the predicates
    checks         `make check`'s summary: points, why each failed check failed, exercises to write
    classroom      GitHub Classroom: the record of `make check`, `passed GRADE_ID`, the workflow's steps
    check_outputs  how a check cell's output is compared (the text, the numbers within a tolerance)
    tracebacks     a cell's error reduced to the student's own frames
    execute        one notebook through papermill (`execute_notebook`, `notebook_parameters`, `stderr_to`)
    runner         `run-notebooks`: discover, plan, execute in order, summary.json (`run_notebooks`, `main`)
    stored_outputs `strip_notebook`, `refresh_checked_outputs`: what a committed notebook keeps
    lab            `make lab`: JupyterLab on the repository
    datagen/       `make-data`: motion capture rendered into the embedded dataset
    compare/       `benchmark`: the models compared on one dataset, beside the report's table

Light to import: TensorFlow, papermill and nbformat load inside the functions that need them.
"""

from pose_course.challenge import CHALLENGE_RUN, hand_in_run
from pose_course.paths import default_dir, notebook_path, outputs_root
from pose_course.provision import ensure_data, ensure_run, has_dataset, prepare_run_dir, setup
from pose_course.records import RECORD_MIME, read_records, record
from pose_course.sweep import runs_varying, sweep, sweep_rows, sweep_settings
from pose_course.tables import (
    bone_table,
    history_table,
    layer_table,
    markdown_table,
    metrics_rows,
    per_joint_table_rows,
    skeleton_table,
    text_table,
)
from pose_utils.evaluate import baseline_metrics, mean_pose_baseline_mm
from pose_utils.plots.picks import frame_grid, pick_clips

__all__ = [
    "CHALLENGE_RUN", "RECORD_MIME", "baseline_metrics", "bone_table", "default_dir", "notebook_path",
    "outputs_root",
    "ensure_data", "ensure_run", "frame_grid",
    "hand_in_run", "has_dataset", "history_table", "layer_table", "markdown_table", "mean_pose_baseline_mm",
    "metrics_rows", "per_joint_table_rows", "pick_clips", "prepare_run_dir", "read_records", "record",
    "runs_varying", "setup", "skeleton_table", "sweep", "sweep_rows", "sweep_settings", "text_table",
]
