"""Training throughput: the report's recipe as written vs `pose_utils.training`, side by side, same data.

    python benchmarks/train_throughput.py --data /tmp/small            # the ratio at batch 5, float32
    python benchmarks/train_throughput.py --data /tmp/small --sweep    # + batch sizes, bf16, XLA, threads
    python benchmarks/train_throughput.py --data /tmp/small --interleaved 6   # single steps, one process

The reference is the report's loop as a student runs it: TensorFlow's own defaults (`import tensorflow`
with no settings; on CPUs without AVX-512 VNNI/BF16 or AMX that means no oneDNN). The same loop then runs
under our settings (`pose_utils.runtime`: oneDNN on), and `pose_utils.training.train` under ours, so the
gain from the settings and the gain from the engine are each visible. Every line says whether oneDNN was on.

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

import pose_utils  # noqa: F401  (TensorFlow's CPU settings, before any worker imports TensorFlow)

BASELINE = {
    "recipe": "report",
    "batch_size": 5,
    "precision": "float32",
    "jit_compile": False,
    "learning_rate": 1e-4,
    "tf_defaults": False,  # True: TensorFlow's own settings, as a student's plain script gets them
    "threads": None,  # [intra_op, inter_op] thread counts; None: TensorFlow's choice (all cores)
}
STUDENT = {**BASELINE, "tf_defaults": True}
SWEEP = [
    {**BASELINE, "recipe": "pose_utils", "threads": [2, 1]},
    {**BASELINE, "recipe": "pose_utils", "threads": [1, 1]},
    {**BASELINE, "recipe": "pose_utils", "jit_compile": True},
    {**BASELINE, "recipe": "pose_utils", "precision": "mixed_bfloat16"},
    {**BASELINE, "recipe": "pose_utils", "batch_size": 10},
    {**BASELINE, "recipe": "pose_utils", "batch_size": 10, "precision": "mixed_bfloat16"},
    {**BASELINE, "recipe": "pose_utils", "batch_size": 20},
    {**BASELINE, "recipe": "pose_utils", "batch_size": 10, "learning_rate": 2e-4},
]


def _report_recipe(spec: dict, data: str, n_train: int, n_valid: int, epochs: int, seed: int) -> dict:
    """The report's loop as written: in-memory float32 splits, from_tensor_slices, eager GradientTape."""
    import keras
    import numpy as np
    import tensorflow as tf

    from pose_utils.data import open_split, subset
    from pose_utils.models import build_model, model_spec
    from pose_utils.targets import fit_transform
    from pose_utils.training.step import train_step

    start = time.perf_counter()
    _set_threads(spec)
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
    optimizer = keras.optimizers.Adam(spec["learning_rate"])
    batch = spec["batch_size"]
    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train)).batch(batch)
    valid_ds = tf.data.Dataset.from_tensor_slices((x_valid, y_valid)).batch(batch)

    def mpjpe_m(y, pred):  # in metres, after mapping both back (as pose_utils reports it)
        return tf.reduce_mean(tf.norm(transform.inverse(pred) - transform.inverse(y), axis=-1))

    train_seconds, val_mpjpe = [], []
    for _ in range(epochs):
        tic = time.perf_counter()
        for x, y in train_ds:
            # the report's eager step (the project's train_step, not compiled) on eq. (2)
            loss, pred = train_step(model, optimizer, x, lambda p, y=y: tf.reduce_mean(tf.square(y - p)))
            float(loss), float(mpjpe_m(y, pred))  # the report logged both at every update
        train_seconds.append(time.perf_counter() - tic)
        errors = [float(mpjpe_m(y, model(x, training=False))) * len(x) for x, y in valid_ds]
        val_mpjpe.append(1000.0 * sum(errors) / len(x_valid))
    return _summary(spec, len(x_train), train_seconds, val_mpjpe, time.perf_counter() - start)


def _pose_utils_recipe(spec: dict, data: str, n_train: int, n_valid: int, epochs: int, seed: int) -> dict:
    from pose_utils.training import TrainConfig, train

    start = time.perf_counter()
    _set_threads(spec)
    config = TrainConfig(
        epochs=epochs,
        batch_size=spec["batch_size"],
        precision=spec["precision"],
        jit_compile=spec["jit_compile"],
        learning_rate=spec["learning_rate"],
        seed=seed,
        max_train_clips=n_train,
        max_valid_clips=n_valid,
    )
    with tempfile.TemporaryDirectory(prefix="throughput_") as run_dir:
        history = train(data, Path(run_dir) / "run", config, progress=False)
    train_seconds = [n_train / c for c in history["clips_per_second"]]
    return _summary(spec, n_train, train_seconds, history["val_mpjpe"], time.perf_counter() - start)


def _set_threads(spec: dict) -> None:
    if spec.get("threads"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(spec["threads"][0])
        tf.config.threading.set_inter_op_parallelism_threads(spec["threads"][1])


def _summary(spec, clips, train_seconds, val_mpjpe, total) -> dict:
    from pose_utils.runtime import onednn_enabled

    steady = train_seconds[1:] or train_seconds
    # Other processes on the machine slow every recipe: the 1-minute load average says how busy it was.
    return {
        **spec,
        "load_average": os.getloadavg()[0],
        "onednn": onednn_enabled(),
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
    from pose_utils import runtime

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TQDM_DISABLE": "1"}
    if spec.get("tf_defaults"):  # what `import tensorflow` gives a plain script
        env.pop(runtime.ONEDNN_VAR, None)
        env[runtime.KEEP_DEFAULTS_VAR] = "1"
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"recipe {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _parse_recipe(text: str) -> dict:
    parts = text.strip().split("/")
    recipe = parts[0]
    if recipe == "student":  # the report's loop under TensorFlow's defaults
        parts[0] = "report"
    lr = 1e-4
    if parts[-1].startswith("lr="):
        lr = float(parts.pop()[3:])
    if len(parts) not in (3, 4) or parts[0] not in ("report", "pose_utils") or not parts[1].isdigit():
        raise SystemExit(f"--recipes: expected RECIPE/BATCH/PRECISION[/xla][/lr=RATE], got {text!r}")
    if parts[0] == "report" and (parts[2:] != ["float32"] or lr != 1e-4):
        raise SystemExit(f"--recipes: the report's recipe is float32, lr 1e-4, without XLA; got {text!r}")
    return {
        **BASELINE,
        "tf_defaults": recipe == "student",
        "recipe": parts[0],
        "batch_size": int(parts[1]),
        "precision": parts[2],
        "jit_compile": len(parts) == 4,
        "learning_rate": lr,
    }


def _label(r: dict) -> str:
    xla = " XLA" if r["jit_compile"] else ""
    xla += f" lr {r['learning_rate']:g}" if r["learning_rate"] != 1e-4 else ""
    xla += " threads {}/{}".format(*r["threads"]) if r.get("threads") else ""
    settings = "TF defaults" if r.get("tf_defaults") else "ours"
    onednn = "on" if r.get("onednn") else "off"
    return f"{r['recipe']:<10} ({settings}, oneDNN {onednn}) batch {r['batch_size']:>2} {r['precision']}{xla}"


### BEGIN INSTRUCTOR ONLY
# The seed written otherwise is the exercise's answer: the student version measures the seed as built.
def _seed_written_otherwise(frame_size: int, time_distributed: bool = False, stock_lstm: bool = False):
    """The seed with its first layer as TimeDistributed(Conv2D) instead of Conv3D(32, (1, 5, 5)), or with
    Keras's stock LSTM instead of `models.layers.BatchedLSTM`: the same function and weights' shapes,
    other kernels (the choices models.seed.build_seed makes)."""
    import keras
    from keras import layers

    from pose_utils.models.layers import BatchedLSTM
    from pose_utils.models.seed import SEED_FILTERS, SEED_KERNEL, SEED_LSTM_UNITS, SEED_POOL

    inputs = keras.Input((8, frame_size, frame_size, 3))
    if time_distributed:
        x = layers.TimeDistributed(layers.Conv2D(SEED_FILTERS, SEED_KERNEL, activation="relu"))(inputs)
    else:
        x = layers.Conv3D(SEED_FILTERS, (1, SEED_KERNEL, SEED_KERNEL), activation="relu")(inputs)
    x = layers.MaxPool3D(pool_size=SEED_POOL, strides=SEED_POOL)(x)
    x = layers.Reshape((8, -1))(x)
    x = (layers.LSTM if stock_lstm else BatchedLSTM)(SEED_LSTM_UNITS, return_sequences=True)(x)
    x = layers.Dense(51, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, layers.Reshape((8, 17, 3), dtype="float32")(x))
### END INSTRUCTOR ONLY


def interleaved_steps(data: str, rounds: int, seed: int) -> list[dict]:
    """Training steps only, in ONE process, variants taken in turn: a load-robust side-by-side ratio.

    Variants: the report's eager step (batch 5, float32) and the compiled step at batch 5 / 10 in float32
    and mixed_bfloat16, with XLA, with the first layer as TimeDistributed(Conv2D) and with Keras's stock
    LSTM, all on the same in-memory clips. Each round runs one step of every variant, so a
    change in machine load hits all of them alike; the median seconds per step is reported.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from pose_utils.data import open_split
    from pose_utils.models import build_model
    from pose_utils.targets import fit_transform
    from pose_utils.training.distribute import precision_policy
    from pose_utils.training.step import train_step

    tf.get_logger().setLevel("ERROR")  # one trace per variant is expected, not a retracing problem
    with open_split(data, "train") as store:
        x = store.read_frames(np.arange(20)).astype(np.float32) / 255.0
        y = fit_transform("minmax", store.joints).forward(store.joints[:20]).astype(np.float32)
        size = store.frame_size
    variants = []
    for name, batch, precision, compiled in (
        ("report eager", 5, "float32", False),
        ("compiled", 5, "float32", True),
        ("compiled XLA", 5, "float32", "xla"),
        ### BEGIN INSTRUCTOR ONLY
        ("compiled TimeDistributed(Conv2D)", 5, "float32", True),
        ("compiled stock keras LSTM", 5, "float32", True),
        ### END INSTRUCTOR ONLY
        ("compiled", 5, "mixed_bfloat16", True),
        ("compiled", 10, "float32", True),
        ("compiled", 10, "mixed_bfloat16", True),
        ("compiled", 20, "float32", True),
    ):
        keras.utils.set_random_seed(seed)
        with precision_policy(precision):
            model = build_model("seed", frame_size=size)
            ### BEGIN INSTRUCTOR ONLY
            if "TimeDistributed" in name or "stock" in name:
                model = _seed_written_otherwise(size, "TimeDistributed" in name, "stock" in name)
            ### END INSTRUCTOR ONLY
        optimizer = keras.optimizers.Adam(1e-4)

        def step(xb, yb, model=model, optimizer=optimizer):
            # the project's own step (pose_utils.training.step), the report's loss (eq. 2)
            def loss_of(pred):
                return tf.reduce_mean(tf.square(yb - tf.cast(pred, tf.float32)))

            return train_step(model, optimizer, xb, loss_of)[0]

        fn = tf.function(step, jit_compile=compiled == "xla" or None) if compiled else step
        xb, yb = tf.constant(x[:batch]), tf.constant(y[:batch])
        float(fn(xb, yb))  # build the optimizer and trace outside the timing
        variants.append(
            {
                "name": f"{name} batch {batch} {precision}",
                "batch": batch,
                "fn": fn,
                "xb": xb,
                "yb": yb,
                "times": [],
            }
        )
    for _ in range(rounds):
        for v in variants:
            tic = time.perf_counter()
            float(v["fn"](v["xb"], v["yb"]))
            v["times"].append(time.perf_counter() - tic)
    results = []
    for v in variants:
        seconds = float(np.median(v["times"]))
        results.append(
            {"variant": v["name"], "seconds_per_step": seconds, "clips_per_second": v["batch"] / seconds}
        )
    return results


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
        help="instead of the default list: comma-separated RECIPE/BATCH/PRECISION[/xla], RECIPE one of "
        "student (the report's loop, TF defaults), report (the same loop, our settings), pose_utils; "
        "e.g. student/5/float32,pose_utils/10/mixed_bfloat16 (the first is the reference)",
    )
    parser.add_argument("--out", default=None, help="write the results here as JSON")
    parser.add_argument(
        "--interleaved",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="instead: time single steps of each variant in turn in one process (ROUNDS rounds)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.interleaved:
        results = interleaved_steps(args.data, args.interleaved, args.seed)
        for r in results:
            print(
                f"{r['variant']:<34} {r['seconds_per_step']:6.3f} s/step "
                f"{r['clips_per_second']:6.2f} clips/s "
                f"(x{r['clips_per_second'] / results[0]['clips_per_second']:.2f})"
            )
        from pose_utils.runtime import onednn_enabled

        print(f"load average {os.getloadavg()[0]:.1f}, oneDNN {'on' if onednn_enabled() else 'off'}")
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        return 0
    if args.worker:
        spec = json.loads(args.worker)
        run = _report_recipe if spec["recipe"] == "report" else _pose_utils_recipe
        print(json.dumps(run(spec, args.data, args.train_clips, args.valid_clips, args.epochs, args.seed)))
        return 0

    specs = [STUDENT, BASELINE, {**BASELINE, "recipe": "pose_utils"}] + (SWEEP if args.sweep else [])
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
