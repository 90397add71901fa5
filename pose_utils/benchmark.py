"""Model comparison on the embedded dataset: `python -m pose_utils benchmark --preset quick|full --out DIR`.

Trains every registered model (the report's `seed` and every variant of `pose_utils.variants`) with the
project's own training engine (`train.train`) on the train split, evaluates each on the held-out
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
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .fileio import atomic_path, read_json, write_json
from .plots import REPORT_PER_JOINT_MPJPE_MM  # the report's per-joint table (Human3.6M, mm), joints 1..17
from .skeleton import JOINT_NAMES

BASELINE = "mean_pose"
SEED = "seed"


@dataclass(frozen=True)
class Recipe:
    """How one entry is trained and evaluated: `train`, the TrainConfig values that differ per entry
    (TrainConfig checks them; the rest keep its defaults, the report's recipe), and `flip_test`, whether
    its evaluation averages test-time flips (`evaluate.predict`)."""

    train: dict
    flip_test: bool = False

    @property
    def model(self) -> str:
        return self.train["model"]


def recipe(model: str, epochs: int, learning_rate: float, flip_test: bool = False, **train) -> Recipe:
    return Recipe({"model": model, "epochs": epochs, "learning_rate": learning_rate, **train}, flip_test)


@dataclass(frozen=True)
class Preset:
    """A benchmark: which data (a make-data preset) and how each entry trains.

    recipes: entry name -> Recipe for the seed-like models and extra entries. Every other registered
    model gets `default_recipe(model)`, so a newly registered model always appears in the comparison.
    """

    name: str
    data_preset: str
    recipes: dict
    variant_epochs: int
    variant_learning_rate: float
    max_train_clips: int | None = None
    max_valid_clips: int | None = None
    # Hold the frames in memory while training (TrainConfig.cache_frames): same results, and the CNN
    # entries' epochs no longer wait for the file to be decompressed (measured in docs/models.md).
    cache_frames: bool = True

    def default_recipe(self, model: str) -> Recipe:
        """The recipe of a registered model without an entry of its own: the CNN variants'."""
        return recipe(model, self.variant_epochs, self.variant_learning_rate)

    def entries(self) -> dict[str, Recipe]:
        """Entry name -> Recipe, in table order: the seed, the other registered models, extra entries."""
        from .models import MODELS

        ordered = [SEED] + [n for n in MODELS if n != SEED]  # the registry's order: the steps from the seed
        entries = {n: self.recipes.get(n) or self.default_recipe(n) for n in ordered}
        entries.update({k: v for k, v in self.recipes.items() if k not in entries})
        return entries


AUGMENT = {"color_jitter": 0.2}  # model option of the CNN variants; flips come from TrainConfig.flip_augment
# The tuned entry: every change measured to help on the `small` data (docs/models.md), together. Not the
# zoom/shift options: with the 2-D keypoint loss they cost 5 mm and 30 % more time (measured, quick).
TUNED_OPTIONS = {"bidirectional": True, "color_jitter": 0.2, "channel_shuffle": True}


def _presets() -> dict[str, Preset]:
    """The presets. Every entry trains for no more time than the seed: at 224×224 a CNN variant's
    training step costs about 1/28 of the seed's on a CPU (it sees the frames at 112×112,
    `input_pool` 2; measured in docs/models.md), so it gets 15 times the seed's epochs and still
    finishes first (cnn_lstm_tuned too, whose bidirectional LSTM, augmentation layers and 2-D keypoint
    head add 10-20 % to a step, so it gets fewer epochs in quick). The seed, seed_tanh and seed_linear
    (the seed's stack, 77 M weights) use the report's recipe, Adam 1e-4 and batch 5; the CNNs Adam 1e-3,
    batch 5."""

    def recipes(seed_epochs: int, variant_epochs: int, tuned_epochs: int) -> dict:
        return {
            SEED: recipe(SEED, seed_epochs, 1e-4),
            "seed_tanh": recipe("seed_tanh", seed_epochs, 1e-4),
            "seed_linear": recipe("seed_linear", seed_epochs, 1e-4),
            "cnn_tcn_aug": recipe("cnn_tcn", variant_epochs, 1e-3, flip_augment=True, model_options=AUGMENT),
            "cnn_lstm_tuned": recipe("cnn_lstm", tuned_epochs, 1e-3, flip_augment=True,
                                     model_options=TUNED_OPTIONS, lr_schedule="cosine", loss="mpjpe",
                                     keypoint_loss=3.0, flip_test=True),
        }

    return {
        # Tests and smoke runs: 64x64, a handful of clips, one epoch each (seconds per model).
        "tiny": Preset("tiny", "tiny", recipes(1, 1, 1), 1, 1e-3, max_train_clips=12, max_valid_clips=8),
        # About 20 minutes on 2 idle CPU cores: 480 train / 160 held-out clips at 224x224. 30 CNN epochs
        # take 130-150 s against the seed's 150 s (idle); the tuned entry, whose step costs more, gets 26
        # (131 s against the seed's 152 s, measured in one run).
        "quick": Preset("quick", "small", recipes(2, 30, 26), 30, 1e-3),
        # The course's clip counts (5,964 / 1,368) at 224x224: about 3 hours on 2 cores. Twelve times
        # the data of quick per epoch, so fewer CNN epochs (20) are enough and stay below the seed's time
        # (the tuned entry's 20 epochs too: 1,382 s against 1,666 s, measured).
        "full": Preset("full", "course", recipes(2, 20, 20), 20, 1e-3),
    }


PRESETS = _presets()


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown benchmark preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


# ----------------------------------------------------------------------------- data


def _dataset_ready(folder: Path) -> bool:
    return all((folder / f"{split}.h5").is_file() for split in ("train", "valid"))


def render_data(preset: Preset, folder: Path, progress: bool = True) -> Path:
    """Render the preset's dataset into `folder` with make-data (HDF5 only), unless it is already there."""
    from .dataset import make_config, make_data

    if _dataset_ready(folder):
        return folder
    make_data(make_config(folder, preset=preset.data_preset, format="h5"), progress=progress)
    return folder


# ----------------------------------------------------------------------------- one entry


def _train_config(preset: Preset, recipe: Recipe):
    from .training import TrainConfig

    return TrainConfig.from_dict({**recipe.train, "max_train_clips": preset.max_train_clips,
                                  "max_valid_clips": preset.max_valid_clips,
                                  "cache_frames": preset.cache_frames})


def _run_state(run_dir: Path, config) -> str:
    """"new", "done" (finished with this config), "resume" (checkpoint of this config), or ConfigError."""
    from .training import run_finished
    from .training.config import SPEED_KEYS

    if not (run_dir / "config.json").is_file():
        return "new"
    # Through TrainConfig, so a run saved before a config key existed reads as that key's default.
    saved = config.from_dict(read_json(run_dir / "config.json")).to_dict()
    if any(saved[k] != v for k, v in config.to_dict().items() if k not in SPEED_KEYS):
        raise ConfigError(
            f"{run_dir} holds a run with another configuration; delete it or choose another --out folder"
        )
    if run_finished(run_dir, config.epochs):
        return "done"
    return "resume" if (run_dir / "checkpoint.json").is_file() else "restart"


def _describe(config, flip_test: bool) -> str:
    from .models import model_spec

    extras = [f"{k}={v}" for k, v in config.model_options.items()]
    if config.flip_augment:
        extras.append("left/right flip augmentation")
    if config.roll_augment:
        extras.append(f"rolls up to {config.roll_augment:g} degrees")
    if config.keypoint_loss:
        extras.append(f"2-D keypoint loss ×{config.keypoint_loss:g}")
    if config.loss != "mse":
        extras.append(f"{config.loss} loss")
    if config.lr_schedule != "constant":
        extras.append(f"{config.lr_schedule} learning rate")
    if flip_test:
        extras.append("test-time flips")
    text = model_spec(config.model).description
    return f"`{config.model}` + {', '.join(extras)}" if extras else text


def run_entry(name: str, recipe: Recipe, preset: Preset, data_dir: Path, out_dir: Path,
              progress: bool = True) -> dict:
    """Train (or resume, or reuse) one entry and evaluate it on the valid split.

    Returns its results.json record: mpjpe_mm, p_mpjpe_mm, per_joint_mpjpe_mm {joint: mm}, params,
    train_seconds, epochs, and what it was (model, description, learning_rate, ...).
    """
    from .evaluate import evaluate
    from .training import train

    if recipe.train.get("keypoint_loss") and not _has_keypoint_labels(data_dir):  # before train() opens it
        # The course's .npy files lack the pelvis positions and intrinsics the 2-D labels come from.
        print(f"{name}: {data_dir} has no 'root' and 'intrinsics' for 2-D keypoint labels; "
              "training it without keypoint_loss")
        recipe = Recipe({**recipe.train, "keypoint_loss": 0.0}, recipe.flip_test)
    config = _train_config(preset, recipe)
    run_dir = out_dir / "runs" / name
    state = _run_state(run_dir, config)
    if state == "restart":  # started but killed before its first checkpoint: nothing to keep
        shutil.rmtree(run_dir)
    if state != "done":
        train(data_dir, run_dir, config, resume=state == "resume", progress=progress)
    history = read_json(run_dir / "history.json")
    metrics = evaluate(data_dir, run_dir, run_dir / "eval", flip_test=recipe.flip_test)
    import keras

    from .models import register_layers

    register_layers()  # the saved models use this package's layers (the seed's BatchedLSTM too)
    params = keras.models.load_model(run_dir / "model.keras", compile=False, safe_mode=True).count_params()
    return {
        "mpjpe_mm": metrics["mpjpe_mm"],
        "p_mpjpe_mm": metrics["p_mpjpe_mm"],
        "per_joint_mpjpe_mm": metrics["per_joint_mpjpe_mm"],
        "params": int(params),
        "train_seconds": float(sum(history["epoch_seconds"])),
        "epochs": len(history["val_mpjpe"]),
        "model": config.model,
        "description": _describe(config, recipe.flip_test),
        "target_transform": config.transform_kind,
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        "flip_augment": config.flip_augment,
        "model_options": dict(config.model_options),
        "lr_schedule": config.lr_schedule,
        "roll_augment": config.roll_augment,
        "keypoint_loss": config.keypoint_loss,
        "loss": config.loss,
        "flip_test": recipe.flip_test,
        "clips_per_second": float(np.mean(history["clips_per_second"])),
        "reused": state == "done",  # trained by an earlier invocation of the benchmark
        "val_mpjpe_per_epoch_mm": [float(v) for v in history["val_mpjpe"]],
        "n_mpjpe_mm": metrics["n_mpjpe_mm"],
        "pck3d_150mm": metrics["pck3d_150mm"],
    }


def _has_keypoint_labels(data_dir: Path) -> bool:
    """Whether the train split stores what 2-D keypoint labels are projected with (HDF5 layout)."""
    from .data import open_split

    with open_split(data_dir, "train") as store:
        return store.has_keypoint_labels


def mean_pose_entry(preset: Preset, data_dir: Path) -> dict:
    """The baseline: the mean training pose (over the clips the models train on) predicted for every frame."""
    from .baseline import mean_pose, mean_pose_prediction
    from .data import open_split, subset
    from .evaluate import compute_metrics

    tic = time.perf_counter()
    with open_split(data_dir, "train") as store:
        mean = mean_pose(store.joints[subset(len(store), preset.max_train_clips)])
    seconds = time.perf_counter() - tic
    with open_split(data_dir, "valid") as store:
        y_true = np.asarray(store.joints, dtype=np.float64)
        metrics = compute_metrics(y_true, mean_pose_prediction(mean, y_true.shape), meta=store.meta)
    return {
        "mpjpe_mm": metrics["mpjpe_mm"],
        "p_mpjpe_mm": metrics["p_mpjpe_mm"],
        "per_joint_mpjpe_mm": metrics["per_joint_mpjpe_mm"],
        "params": 0,
        "train_seconds": seconds,
        "epochs": 0,
        "model": BASELINE,
        "description": "the mean training pose, predicted for every frame (no image is looked at)",
        "n_mpjpe_mm": metrics["n_mpjpe_mm"],
        "pck3d_150mm": metrics["pck3d_150mm"],
    }


# ----------------------------------------------------------------------------- the whole benchmark


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
    from .data import open_split, subset

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


# ----------------------------------------------------------------------------- tables and chart


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference and math.isfinite(reference) else "-"


def markdown(results: dict) -> str:
    """results.md: the comparison table, then per-joint MPJPE next to the report's table."""
    models = results["models"]
    seed = models.get(SEED, {})
    data = results["data"]
    reused = sum(bool(m.get("reused")) for m in models.values())
    lines = [
        f"# Benchmark `{results['preset']}`",
        "",
        f"{data['train_clips']} training clips, {data['valid_clips']} held-out validation clips "
        f"(subjects {', '.join(data['valid_subjects'] or ['?'])}), "
        f"{data['frame_size']}x{data['frame_size']} frames; {results['machine']['cpus']} CPU(s). "
        f"This invocation took {results['total_seconds'] / 60:.1f} min"
        + (f" and reused {reused} finished run(s) of an earlier one." if reused else "."),
        "Rendered data, not Human3.6M: these numbers are not comparable with Human3.6M results.",
        "",
        "| model | MPJPE (mm) | P-MPJPE (mm) | × seed | params | epochs | train time (s) | what it is |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, m in models.items():
        ratio = _ratio(m["mpjpe_mm"], seed.get("mpjpe_mm"))
        lines.append(
            f"| `{name}` | {m['mpjpe_mm']:.1f} | {m['p_mpjpe_mm']:.1f} | {ratio} "
            f"| {m['params']:,} | {m['epochs']} | {m['train_seconds']:.0f} | {m['description']} |"
        )
    names = list(models)
    lines += [
        "",
        "## Per-joint MPJPE (mm)",
        "",
        "| joint | " + " | ".join(f"`{n}`" for n in names) + " | report (Human3.6M) |",
        "| --- | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for j, joint in enumerate(JOINT_NAMES):
        values = " | ".join(f"{models[n]['per_joint_mpjpe_mm'][joint]:.1f}" for n in names)
        lines.append(f"| {j + 1} {joint} | {values} | {REPORT_PER_JOINT_MPJPE_MM[j]:.2f} |")
    return "\n".join(lines) + "\n"


def write_markdown(path, results: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(markdown(results), encoding="utf-8")


def plot_results(results: dict, path) -> None:
    """Grouped horizontal bars: per-joint MPJPE of every entry, and the report's values as markers."""
    from matplotlib.figure import Figure

    models = results["models"]
    names = list(models)
    fig = Figure(figsize=(8, 9), layout="constrained")
    ax = fig.subplots()
    rows = np.arange(len(JOINT_NAMES))
    height = 0.85 / len(names)
    colors = {BASELINE: "0.7", SEED: "tab:orange"}
    cycle = iter(["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:cyan", "tab:olive",
                  "tab:red"] * 4)
    for i, name in enumerate(names):
        values = [models[name]["per_joint_mpjpe_mm"][j] for j in JOINT_NAMES]
        ax.barh(rows + (i - (len(names) - 1) / 2) * height, values, height=height,
                color=colors.get(name) or next(cycle), label=f"{name} ({models[name]['mpjpe_mm']:.0f} mm)")
    ax.plot(REPORT_PER_JOINT_MPJPE_MM, rows, "kD", markersize=4, label="report (Human3.6M, seed)")
    ax.set_yticks(rows, [f"{j + 1} {n}" for j, n in enumerate(JOINT_NAMES)])
    ax.invert_yaxis()
    ax.set_xlabel("MPJPE (mm), held-out subjects")
    ax.grid(axis="x", alpha=0.3)
    # Below the axes: inside, it would hide the longest bars (the wrists and ankles, at the bottom).
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncols=3, fontsize="small", frameon=False)
    ax.set_title(f"Per-joint MPJPE, benchmark '{results['preset']}' (rendered data)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def main(args) -> int:
    """`python -m pose_utils benchmark --preset quick|full --out DIR [--data DIR]`."""
    results = run_benchmark(args.preset, args.out, data_dir=args.data)
    print(markdown(results))
    print(f"wrote {Path(args.out) / 'results.json'}, results.md and per_joint.png")
    return 0


__all__ = ["PRESETS", "Preset", "Recipe", "REPORT_PER_JOINT_MPJPE_MM", "run_benchmark", "markdown",
           "plot_results", "mean_pose_entry", "run_entry"]
