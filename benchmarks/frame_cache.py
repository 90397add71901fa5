"""Training with the frames cached in memory (`TrainConfig.cache_frames`) vs streamed from the HDF5 file.

    python benchmarks/frame_cache.py --data results/quick/data            # the small preset's data
    python benchmarks/frame_cache.py --data DATA --model cnn_lstm --rounds 3

Trains the benchmark's tuned recipe (`cnn_lstm_tuned`'s model and TrainConfig) for a few epochs, with
and without the cache, each run in a fresh process, the two taken in turn `--rounds` times so that a
change in machine load hits both alike. Reports the training clips/s of epochs 2.. (epoch 1 holds the
tracing) per run, the median per setting, their ratio, and checks that both settings trained the same
run (identical validation MPJPE). Caching itself (reading the split once) is timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _worker(data: str, cache: bool, epochs: int) -> dict:
    from pose_course.compare import get_preset, train_config
    from pose_utils.training import train

    preset = get_preset("quick")
    recipe = preset.entries()["cnn_lstm_tuned"]
    config = train_config(preset, recipe).replace(epochs=epochs, cache_frames=cache)
    with tempfile.TemporaryDirectory() as run_dir:
        tic = time.perf_counter()
        history = train(data, Path(run_dir) / "run", config, progress=False)
        total = time.perf_counter() - tic
    return {"cache_frames": cache, "clips_per_second": statistics.mean(history["clips_per_second"][1:]),
            "val_mpjpe": history["val_mpjpe"][-1], "total_seconds": total}


def _cache_seconds(data: str) -> float:
    from pose_utils.data import open_split

    with open_split(data, "train") as store:
        tic = time.perf_counter()
        store.cache_frames(progress=False)
        return time.perf_counter() - tic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset folder in the HDF5 layout (make-data)")
    parser.add_argument("--epochs", type=int, default=3, help="per run (>= 2: epoch 1 holds the tracing)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per setting, taken in turn")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (epoch 1 holds the tracing)")
    if args.worker:
        print(json.dumps(_worker(args.data, args.worker == "cached", args.epochs)))
        return 0

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TQDM_DISABLE": "1"}
    runs = []
    for _ in range(args.rounds):
        for setting in ("streamed", "cached"):
            cmd = [sys.executable, __file__, "--data", args.data, "--epochs", str(args.epochs),
                   "--worker", setting]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise SystemExit(f"the {setting} run failed:\n{done.stderr[-3000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = runs[-1]
            print(f"{setting:<8} {r['clips_per_second']:6.1f} clips/s, val MPJPE {r['val_mpjpe']:.1f} mm, "
                  f"{r['total_seconds']:.0f} s in all", flush=True)
    median = {c: statistics.median(r["clips_per_second"] for r in runs if r["cache_frames"] == c)
              for c in (False, True)}
    same = len({round(r["val_mpjpe"], 6) for r in runs}) == 1
    print(f"cached / streamed: x{median[True] / median[False]:.2f} ({median[True]:.1f} vs "
          f"{median[False]:.1f} clips/s); same validation MPJPE in every run: {same}; caching the train "
          f"split took {_cache_seconds(args.data):.1f} s; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
