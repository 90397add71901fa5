"""Training-step cost of every registered model on random clips, side by side in one process.

    python benchmarks/models.py                      # 224x224, batch 5 (the report's)
    python benchmarks/models.py --size 112 --batch 16 --repeats 10

For each model: parameters, seconds per compiled training step (GradientTape → Adam.apply, MSE on
random targets, the step `pose_utils.training` runs; tracing and two warm-up steps excluded), clips per
second, seconds per forward pass, and the ratio of its step time to the seed's. The models run one
after the other on the same machine, so other load affects all of them: compare the ratios, and
rerun when the machine is busy. Random data is enough here: the cost of a step does not depend on the
pixel values. docs/models.md quotes the numbers.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def step_seconds(name: str, size: int, batch: int, repeats: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from pose_utils.models import build_model
    from pose_utils.training.step import train_step as step

    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((batch, 8, size, size, 3), dtype=np.float32))
    y = tf.constant(rng.standard_normal((batch, 8, 17, 3)).astype(np.float32))
    model = build_model(name, frame_size=size)
    optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def train_step(x, y):  # the project's own step (pose_utils.training.step), eq. 2
        return step(model, optimizer, x, lambda p: tf.reduce_mean(tf.square(tf.cast(p, tf.float32) - y)))[0]

    forward = tf.function(lambda x: model(x, training=False))
    for _ in range(2):
        train_step(x, y).numpy()
        forward(x).numpy()
    tic = time.perf_counter()
    for _ in range(repeats):
        train_step(x, y).numpy()
    train = (time.perf_counter() - tic) / repeats
    tic = time.perf_counter()
    for _ in range(repeats):
        forward(x).numpy()
    return {"params": model.count_params(), "train_step_s": train, "clips_per_s": batch / train,
            "forward_s": (time.perf_counter() - tic) / repeats}


def main() -> None:
    from tqdm.auto import tqdm

    from pose_utils.models import MODELS, available_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224, help="frame size in pixels (default 224)")
    parser.add_argument("--batch", type=int, default=5, help="clips per step (default 5, the report's)")
    parser.add_argument("--repeats", type=int, default=6, help="timed steps per model (default 6)")
    parser.add_argument("--models", default=None, help="comma-separated names (default: all, seed first)")
    args = parser.parse_args()
    available_models()
    names = args.models.split(",") if args.models else list(MODELS)
    rows = {name: step_seconds(name, args.size, args.batch, args.repeats)
            for name in tqdm(names, unit="model")}
    seed = rows.get("seed", {}).get("train_step_s")
    print(f"{args.size}x{args.size}, batch {args.batch}, {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.1f}")
    header = ("model", "params", "step (s)", "clips/s", "forward (s)", "step/seed")
    print("{:14s} {:>12s} {:>9s} {:>8s} {:>11s} {:>9s}".format(*header))
    for name, r in rows.items():
        ratio = f"{r['train_step_s'] / seed:.3f}" if seed else "-"
        print(f"{name:14s} {r['params']:>12,} {r['train_step_s']:>9.3f} {r['clips_per_s']:>8.1f} "
              f"{r['forward_s']:>11.3f} {ratio:>9s}")


if __name__ == "__main__":
    main()
