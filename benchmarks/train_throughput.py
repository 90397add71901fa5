"""Training throughput: the report's recipe as written vs `pose_utils.train`, side by side on the same data.

    python benchmarks/train_throughput.py --data /tmp/small            # the ratio at batch 5, float32
    python benchmarks/train_throughput.py --data /tmp/small --sweep    # + batch sizes, bf16, XLA

The report's recipe: every training clip loaded into memory as float32 and fed through
`tf.data.Dataset.from_tensor_slices(...).shuffle(...).batch(5)` to an eager `tf.GradientTape` loop
(Adam 1e-4, MSE eq. 2), with loss and MPJPE computed eagerly on the validation clips after each epoch.
`pose_utils`: `train()` with the same model, batch, optimiser, targets and clips (frames streamed from
disk, compiled step, checkpoints, history). Each recipe runs in its own fresh process so that process-wide
state (op determinism, dtype policy, memory) cannot leak between them; they run one after the other on
the same machine, so other load on the machine affects both: compare ratios, and rerun when noisy.

Reported per recipe: steady-state training clips/s (the training pass of epochs 2.., which excludes
tracing), the first epoch's seconds (tracing included), end-to-end seconds (load, build, all epochs with
validation) and the validation MPJPE after the last epoch. Frames must be 224×224 for the goal to apply
(any size works). Results also go to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = {"recipe": "report", "batch_size": 5, "precision": "float32", "jit_compile": False}
SWEEP = [
    {"recipe": "pose_utils", "batch_size": 5, "precision": "float32", "jit_compile": True},
    {"recipe": "pose_utils", "batch_size": 5, "precision": "mixed_bfloat16", "jit_compile": False},
    {"recipe": "pose_utils", "batch_size": 10, "precision": "float32", "jit_compile": False},
    {"recipe": "pose_utils", "batch_size": 10, "precision": "mixed_bfloat16", "jit_compile": False},
    {"recipe": "pose_utils", "batch_size": 20, "precision": "mixed_bfloat16", "jit_compile": False},
]


def _report_recipe(spec: dict, data: str, n_train: int, n_valid: int, epochs: int, seed: int) -> dict:
    """The report's loop as written: in-memory float32 splits, from_tensor_slices, eager GradientTape."""
    import keras
    import numpy as np
    import tensorflow as tf

    from pose_utils.data import open_split
    from pose_utils.models import build_model, model_spec
    from pose_utils.train import subset
    from pose_utils.transforms import fit_transform

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    with open_split(data, "train") as train_store, open_split(data, "valid") as valid_store:
        ti, vi = subset(len(train_store), n_train), subset(len(valid_store), n_valid)
        x_train = train_store.read_frames(ti).astype(np.float32) / 255.0  # the report divided by 255
        x_valid = valid_store.read_frames(vi).astype(np.float32) / 255.0
        transform = fit_transform(model_spec("seed").target_transform, train_store.joints[ti])
        y_train = transform.forward(train_store.joints[ti]).astype(np.float32)
        y_valid = transform.forward(valid_store.joints[vi]).astype(np.float32)
        size = train_store.frame_size
    model = build_model("seed", frame_size=size)
    optimizer = keras.optimizers.Adam(1e-4)
    batch = spec["batch_size"]
    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train)).batch(batch)
    valid_ds = tf.data.Dataset.from_tensor_slices((x_valid, y_valid)).batch(batch)

    def mpjpe_m(y, pred):  # in metres, after mapping both back (as pose_utils reports it)
        return tf.reduce_mean(tf.norm(transform.inverse(pred) - transform.inverse(y), axis=-1))

    train_seconds, val_mpjpe = [], []
    for _ in range(epochs):
        tic = time.perf_counter()
        for x, y in train_ds:
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                loss = tf.reduce_mean(tf.square(y - pred))  # eq. (2)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            float(loss), float(mpjpe_m(y, pred))  # the report logged both at every update
        train_seconds.append(time.perf_counter() - tic)
        errors = [float(mpjpe_m(y, model(x, training=False))) * len(x) for x, y in valid_ds]
        val_mpjpe.append(1000.0 * sum(errors) / len(x_valid))
    return _summary(spec, len(x_train), train_seconds, val_mpjpe, time.perf_counter() - start)


def _pose_utils_recipe(spec: dict, data: str, n_train: int, n_valid: int, epochs: int, seed: int) -> dict:
    from pose_utils.train import TrainConfig, train

    start = time.perf_counter()
    config = TrainConfig(
        epochs=epochs,
        batch_size=spec["batch_size"],
        precision=spec["precision"],
        jit_compile=spec["jit_compile"],
        seed=seed,
        max_train_clips=n_train,
        max_valid_clips=n_valid,
    )
    with tempfile.TemporaryDirectory(prefix="throughput_") as run_dir:
        history = train(data, Path(run_dir) / "run", config, progress=False)
    train_seconds = [n_train / c for c in history["clips_per_second"]]
    return _summary(spec, n_train, train_seconds, history["val_mpjpe"], time.perf_counter() - start)


def _summary(spec, clips, train_seconds, val_mpjpe, total) -> dict:
    steady = train_seconds[1:] or train_seconds
    # Other processes on the machine slow every recipe: the 1-minute load average says how busy it was.
    return {
        **spec,
        "load_average": os.getloadavg()[0],
        "clips": clips,
        "clips_per_second": clips * len(steady) / sum(steady),
        "first_epoch_seconds": train_seconds[0],
        "total_seconds": total,
        "val_mpjpe": val_mpjpe[-1],
    }


def _run_worker(spec: dict, args) -> dict:
    """One recipe in a fresh Python process; its result is the last line of its stdout."""
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        json.dumps(spec),
        "--data",
        args.data,
        "--train-clips",
        str(args.train_clips),
        "--valid-clips",
        str(args.valid_clips),
        "--epochs",
        str(args.epochs),
        "--seed",
        str(args.seed),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TQDM_DISABLE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"recipe {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _parse_recipe(text: str) -> dict:
    parts = text.strip().split("/")
    if len(parts) not in (3, 4) or parts[0] not in ("report", "pose_utils") or not parts[1].isdigit():
        raise SystemExit(f"--recipes: expected RECIPE/BATCH/PRECISION[/xla], got {text!r}")
    if parts[0] == "report" and parts[2:] != ["float32"]:
        raise SystemExit(f"--recipes: the report's recipe is float32 without XLA, got {text!r}")
    return {
        "recipe": parts[0],
        "batch_size": int(parts[1]),
        "precision": parts[2],
        "jit_compile": len(parts) == 4,
    }


def _label(r: dict) -> str:
    xla = " XLA" if r["jit_compile"] else ""
    return f"{r['recipe']:<10} batch {r['batch_size']:>2} {r['precision']}{xla}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset folder (e.g. make-data --preset small)")
    parser.add_argument("--train-clips", type=int, default=60)
    parser.add_argument("--valid-clips", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3, help="per recipe (>= 2: epoch 1 holds the tracing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="also batch sizes, mixed_bfloat16 and XLA")
    parser.add_argument(
        "--recipes",
        default=None,
        help="instead of the default list: comma-separated RECIPE/BATCH/PRECISION[/xla], "
        "e.g. report/5/float32,pose_utils/10/mixed_bfloat16 (the first is the reference)",
    )
    parser.add_argument("--out", default=None, help="write the results here as JSON")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        spec = json.loads(args.worker)
        run = _report_recipe if spec["recipe"] == "report" else _pose_utils_recipe
        print(json.dumps(run(spec, args.data, args.train_clips, args.valid_clips, args.epochs, args.seed)))
        return 0

    specs = [BASELINE, {**BASELINE, "recipe": "pose_utils"}] + (SWEEP if args.sweep else [])
    if args.recipes:
        specs = [_parse_recipe(text) for text in args.recipes.split(",")]
    print(
        f"{args.train_clips} training clips, {args.valid_clips} validation clips, {args.epochs} epochs per "
        f"recipe, data {args.data}, {os.cpu_count()} CPUs"
    )
    results = []
    for spec in specs:
        results.append(_run_worker(spec, args))
        r = results[-1]
        speedup = r["clips_per_second"] / results[0]["clips_per_second"]
        print(
            f"{_label(r)}: {r['clips_per_second']:6.2f} clips/s (x{speedup:.2f}), first epoch "
            f"{r['first_epoch_seconds']:6.1f} s, end to end {r['total_seconds']:6.1f} s "
            f"(x{results[0]['total_seconds'] / r['total_seconds']:.2f}), val MPJPE {r['val_mpjpe']:.1f} mm, "
            f"load average {r['load_average']:.1f}",
            flush=True,
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
