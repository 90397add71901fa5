"""Model comparison on the embedded dataset: `python -m pose_utils benchmark --preset quick|full --out DIR`.

Trains every registered model (the report's `seed` and every model of `pose_utils.models`) with the
project's own training engine (`pose_utils.training.train`) on the train split, evaluates each on the held-out
subjects of the valid split (`evaluate.evaluate`), adds the mean-pose baseline, and writes

    DIR/results.json   {"models": {name: {mpjpe_mm, p_mpjpe_mm, per_joint_mpjpe_mm, params,
                        train_seconds, epochs, ...}}, "preset": ..., "data": ..., ...}
    DIR/results.md     the comparison table and the per-joint table next to the report's
    DIR/per_joint.png  per-joint MPJPE of every model, with the report's values
    DIR/runs/NAME/     each model's run folder (checkpoints, history, model.keras, eval/metrics.json)
    DIR/data/          the rendered dataset, when --data is not given

The baseline is under `mean_pose`, the report's model under `seed`. `train_seconds` is the sum of the
run's per-epoch wall times (training steps plus the per-epoch validation pass), so a benchmark that
was interrupted and resumed still reports the whole training time. Entries whose run folder already
holds a finished run with the same configuration are not trained again: rerun the same command to
resume after an interruption.

    recipes   the presets and recipes: which models, trained how, on which data
    entries   one entry: the data rendered once, a model trained (or its run reused) and evaluated;
              the mean-pose baseline's entry
    summary   results.md and per_joint.png
    command   the whole comparison (`run_benchmark`) and the `benchmark` command (`main`)
"""

from pose_course.compare.command import main, run_benchmark
from pose_course.compare.entries import mean_pose_entry, render_data, run_entry, train_config
from pose_course.compare.recipes import BASELINE, PRESETS, SEED, Preset, Recipe, get_preset, recipe
from pose_course.compare.summary import markdown, plot_results, write_markdown
from pose_utils.report import REPORT_PER_JOINT_MPJPE_MM

__all__ = [
    "BASELINE", "PRESETS", "Preset", "REPORT_PER_JOINT_MPJPE_MM", "Recipe", "SEED", "get_preset", "main",
    "markdown", "mean_pose_entry", "plot_results", "recipe", "render_data", "run_benchmark", "run_entry",
    "train_config", "write_markdown",
]
