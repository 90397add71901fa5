"""This machine's limits, and how close the seed model's compiled training step comes to them.

    python benchmarks/roofline.py                  # 224x224, batch 5, float32 (the report's recipe)
    python benchmarks/roofline.py --batch 10 --out results/roofline.json

Measures, in one process with TensorFlow's settings as `pose_utils` sets them (oneDNN on):
- fp32 matmul GFLOP/s: a compiled 2048x2048 (and the LSTM's 40x387200 @ 387200x200) matmul;
- memory bandwidth: copying arrays that were touched first (so page faults do not count), one thread a
  core, as GB/s of bytes read plus written;
- Adam's update over the seed's 77,455,233 weights, side by side: Keras 3's `Adam.apply` and the
  engine's `FusedAdam` (pose_utils/training/fused.py: TensorFlow's one-pass kernel), both compiled;
- the seed's compiled gradient alone (GradientTape, eq. 2, no update), and the compiled training step
  with each optimiser (the engine's is the fused one).

The limit adds, per part of the step, the larger of its FLOPs at the matmul rate and its compulsory
bytes at the copy bandwidth (a roofline per part):

    conv forward + weight gradient    2 x B*8*220*220*32*75*2 FLOPs; the conv output written and read
    LSTM input projection             fwd, input gradient, weight gradient: 3 x B*8*387200*200*2 FLOPs;
                                      the 310 MB kernel read twice, its gradient written once
    Adam's update                     7 float32 streams over the weights (read weight, gradient, m, v;
                                      write weight, m, v): 28 bytes a weight at the copy bandwidth

The achieved fraction is limit / measured step. "Where the rest goes" splits the measured step into the
gradient (forward and backward), the update, and what is left (the step's own overhead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pose_utils  # noqa: E402,F401  (sets TensorFlow's CPU settings before TensorFlow is imported)


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm up: tracing, allocation
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    return 2 * n**3 / _median_seconds(lambda: float(mm()), repeats) / 1e9


def lstm_matmul_gflops(batch: int, inputs: int, units: int = 200, repeats: int = 5) -> float:
    """The seed's input projection: (B*8, 387200) @ (387200, 4*50), the shape the step really runs."""
    import tensorflow as tf

    x = tf.random.normal((batch * 8, inputs))
    w = tf.random.normal((inputs, units))
    mm = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(x, w)))
    return 2 * batch * 8 * inputs * units / _median_seconds(lambda: float(mm()), repeats) / 1e9


def copy_bandwidth_gbs(megabytes: int = 512, repeats: int = 10, threads: int | None = None) -> float:
    """GB/s read plus written by copying touched arrays, split over `threads` threads (default: every
    core, as TensorFlow's kernels run)."""
    import threading

    import numpy as np

    threads = threads or os.cpu_count() or 1
    src = np.ones(megabytes * 2**20 // 4, np.float32)  # written once: its pages are mapped
    dst = np.zeros_like(src)
    dst += 1  # touched too
    parts = list(zip(np.array_split(src, threads), np.array_split(dst, threads), strict=True))

    def copy():
        workers = [threading.Thread(target=np.copyto, args=(d, s)) for s, d in parts]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    seconds = _median_seconds(copy, repeats)
    return 2 * src.nbytes / seconds / 1e9


def _seed_and_data(frame_size: int, batch: int, seed: int = 0):
    import keras
    import numpy as np
    import tensorflow as tf

    from pose_utils.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model("seed", frame_size=frame_size)
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.integers(0, 256, (batch, 8, frame_size, frame_size, 3)).astype(np.float32) / 255)
    y = tf.constant(rng.uniform(0.1, 0.9, (batch, 8, 17, 3)).astype(np.float32))
    return model, x, y


def _adam(fused: bool):
    import keras

    from pose_utils.training.fused import FusedAdam

    return (FusedAdam if fused else keras.optimizers.Adam)(1e-4)


def adam_seconds(model, fused: bool, repeats: int = 5) -> float:
    import tensorflow as tf

    weights = model.trainable_weights  # what the step updates
    grads = [tf.fill(v.shape, 1e-3) for v in weights]
    optimizer = _adam(fused)
    optimizer.build(weights)
    apply = tf.function(lambda: optimizer.apply(grads, weights))
    return _median_seconds(lambda: (apply(), float(optimizer.iterations)), repeats)


def gradient_seconds(model, x, y, repeats: int = 5) -> float:
    """The compiled forward and backward pass alone: the step without its update."""
    import tensorflow as tf

    from pose_utils import tf_metrics

    def grads():  # the step's backward pass, summed so that nothing of it is pruned
        with tf.GradientTape() as backward:
            loss = tf_metrics.mse_loss(y, model(x, training=True))
        return tf.add_n([tf.reduce_sum(g) for g in backward.gradient(loss, model.trainable_weights)])

    compiled = tf.function(grads)
    return _median_seconds(lambda: float(compiled()), repeats)


def step_seconds(model, x, y, fused: bool, repeats: int = 5) -> float:
    import tensorflow as tf

    from pose_utils import tf_metrics
    from pose_utils.training.step import train_step

    optimizer = _adam(fused)
    optimizer.build(model.trainable_variables)
    step = tf.function(lambda: train_step(model, optimizer, x, lambda pred: tf_metrics.mse_loss(y, pred))[0])
    return _median_seconds(lambda: float(step()), repeats)


def estimate(batch: int, frame_size: int, weights: int, peak_gflops: float, lstm_gflops: float,
             bandwidth_gbs: float) -> dict:
    """Seconds per part of the step at the machine's limits (see the module docstring)."""
    conv_hw = (frame_size - 4) ** 2
    pooled = conv_hw // 4 * 32
    conv_flops = 2 * batch * 8 * conv_hw * 32 * 75 * 2
    conv_bytes = 4 * batch * 8 * conv_hw * 32 * 3  # written forward, read by the pool and by the backward
    lstm_flops = 3 * batch * 8 * pooled * 200 * 2
    lstm_bytes = 4 * pooled * 200 * 3  # kernel read forward and backward, its gradient written
    update_bytes = 7 * 4 * weights
    stages = {
        "conv": max(conv_flops / (peak_gflops * 1e9), conv_bytes / (bandwidth_gbs * 1e9)),
        "lstm_projection": max(lstm_flops / (lstm_gflops * 1e9), lstm_bytes / (bandwidth_gbs * 1e9)),
        "adam_update": update_bytes / (bandwidth_gbs * 1e9),
    }
    return {"stages_seconds": stages, "seconds": sum(stages.values()), "flops": conv_flops + lstm_flops,
            "bytes": conv_bytes + lstm_bytes + update_bytes, "update_bytes": update_bytes}


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    lines = [line for line in text.splitlines() if line.startswith("flags")]
    flags = lines[0].split(":", 1)[1].split() if lines else []
    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--frame-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="write the results here as JSON")
    args = parser.parse_args(argv)

    from pose_utils.runtime import onednn_enabled

    peak = matmul_gflops()
    bandwidth = copy_bandwidth_gbs()
    model, x, y = _seed_and_data(args.frame_size, args.batch)
    weights = sum(int(v.numpy().size) for v in model.trainable_variables)
    pooled = ((args.frame_size - 4) // 2) ** 2 * 32
    lstm = lstm_matmul_gflops(args.batch, pooled)
    adam_keras = adam_seconds(model, fused=False, repeats=args.repeats)
    adam_fused = adam_seconds(model, fused=True, repeats=args.repeats)
    gradient = gradient_seconds(model, x, y, args.repeats)
    step_keras = step_seconds(model, x, y, fused=False, repeats=args.repeats)
    step = step_seconds(model, x, y, fused=True, repeats=args.repeats)
    est = estimate(args.batch, args.frame_size, weights, peak, lstm, bandwidth)
    limit_gradient = est["stages_seconds"]["conv"] + est["stages_seconds"]["lstm_projection"]
    result = {
        "cpu_flags": cpu_flags(),
        "cpus": os.cpu_count(),
        "onednn": onednn_enabled(),
        "load_average": os.getloadavg()[0],
        "batch": args.batch,
        "frame_size": args.frame_size,
        "weights": weights,
        "matmul_gflops": peak,
        "lstm_matmul_gflops": lstm,
        "copy_bandwidth_gbs": bandwidth,
        "adam_keras_seconds": adam_keras,
        "adam_fused_seconds": adam_fused,
        "gradient_seconds": gradient,
        "step_keras_adam_seconds": step_keras,
        "step_seconds": step,
        "estimate": est,
        "achieved_fraction": est["seconds"] / step,
        "where": {"gradient": gradient, "update": adam_fused, "rest": max(0.0, step - gradient - adam_fused)},
        "fractions": {"gradient": limit_gradient / gradient,
                      "update": est["stages_seconds"]["adam_update"] / adam_fused},
    }
    onednn = "on" if result["onednn"] else "off"
    print(f"CPU: {os.cpu_count()} cores, {' '.join(result['cpu_flags'])}; oneDNN {onednn}")
    print(f"fp32 matmul 2048^3: {peak:.1f} GFLOP/s; the LSTM's ({args.batch * 8}x{pooled}) @ ({pooled}x200): "
          f"{lstm:.1f} GFLOP/s")
    print(f"memory bandwidth (copy, touched pages, {os.cpu_count()} threads): {bandwidth:.1f} GB/s")
    print(f"Adam update over {weights:,} weights ({est['update_bytes'] / 1e9:.2f} GB moved, limit "
          f"{est['stages_seconds']['adam_update']:.3f} s): Keras {adam_keras:.3f} s, fused "
          f"{adam_fused:.3f} s ({adam_keras / adam_fused:.2f}x)")
    stages = ", ".join(f"{k} {v:.3f} s" for k, v in est["stages_seconds"].items())
    print(f"limit for one seed step (batch {args.batch}, {args.frame_size}x{args.frame_size}): "
          f"{est['seconds']:.3f} s ({stages})")
    print(f"measured compiled step: {step:.3f} s with the fused update ({step_keras:.3f} s with Keras's) -> "
          f"{result['achieved_fraction']:.0%} of the limit (load average {result['load_average']:.1f})")
    w = result["where"]
    print(f"where it goes: gradient {w['gradient']:.3f} s ({result['fractions']['gradient']:.0%} of its "
          f"limit), update {w['update']:.3f} s ({result['fractions']['update']:.0%} of its limit), "
          f"the rest {w['rest']:.3f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
