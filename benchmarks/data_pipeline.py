"""Benchmark: stream one shuffled epoch of a multi-GB dataset through `pose_utils.data.tf_dataset`.

Writes a ~3 GB dataset of random clips under /tmp in both layouts (the course's .npy via
`open_memmap`, our HDF5 chunked per clip), then, for each layout in a fresh process, runs one shuffled
epoch and reports clips/s and the peak anonymous memory (RssAnon from /proc/self/status: heap and
tensors, not the file pages the kernel can drop), next to what the report's approach — the whole
split as float32 in memory — would need. The files are deleted afterwards unless --keep.

    .venv/bin/python benchmarks/data_pipeline.py                 # 3 GB, 224x224, batch 16
    .venv/bin/python benchmarks/data_pipeline.py --gb 0.3 --batch-size 5

By default the page cache is dropped for the files before the epoch (posix_fadvise DONTNEED), so the
numbers include reading from disk; --warm keeps whatever the cache holds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WRITE_BLOCK = 32  # clips written per step (~38 MB at 224x224)


def rss_kib() -> dict[str, int]:
    """RssAnon and RssFile of this process in KiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


class PeakSampler:
    """Samples RssAnon every `interval` seconds in a thread; `.peak` in KiB."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak = interval, rss_kib()["RssAnon"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib()["RssAnon"])
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib()["RssAnon"])


def drop_page_cache(path: Path) -> None:
    """Ask the kernel to forget the file's cached pages, so the next read comes from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def write_dataset(folder: Path, clips: int, size: int, seed: int = 0) -> None:
    """Random frames and root-relative labels for a 'train' split, as .npy and as HDF5."""
    import h5py

    # Keep the layouts in separate folders: a folder with both would always open the HDF5 file.
    (folder / "h5").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (clips, 8, size, size, 3)
    joints = rng.uniform(-0.9, 0.9, (clips, 8, 17, 3)).astype(np.float32)
    joints[:, :, 0] = 0.0
    np.save(folder / "joint_3d_clips_train.npy", joints)
    frames = np.lib.format.open_memmap(folder / "videoframes_clips_train.npy", "w+", np.uint8, shape)
    with h5py.File(folder / "h5" / "train.h5", "w") as h5:
        h5.create_dataset("joints", data=joints)
        ds = h5.create_dataset("frames", shape, np.uint8, chunks=(1,) + shape[1:])  # random: lzf cannot help
        h5.attrs["units"] = "m"
        for start in tqdm(range(0, clips, WRITE_BLOCK), desc="writing .npy + .h5", unit="block"):
            stop = min(start + WRITE_BLOCK, clips)
            block = np.frombuffer(rng.bytes((stop - start) * math.prod(shape[1:])), np.uint8)
            block = block.reshape((stop - start,) + shape[1:])
            frames[start:stop] = block
            ds[start:stop] = block
    frames.flush()
    del frames


def measure(folder: Path, batch_size: int, warm: bool) -> dict:
    """One shuffled epoch in this process: clips/s and RssAnon (run in a fresh process per layout)."""
    import tensorflow as tf

    from pose_utils.data import open_split, tf_dataset

    tf.constant(0.0) + 1  # start TensorFlow's runtime before taking the baseline
    store = open_split(folder, "train")
    if not warm:
        for path in store.paths:
            drop_page_cache(path)
    baseline = rss_kib()["RssAnon"]
    clips = 0
    with PeakSampler() as sampler:
        start = time.perf_counter()
        first = None
        for frames, _ in tf_dataset(store, batch_size, shuffle=True, seed=0, epoch=0):
            clips += int(frames.shape[0])
            first = first or time.perf_counter() - start
        seconds = time.perf_counter() - start
    store.close()
    return {
        "layout": store.layout, "clips": clips, "seconds": seconds, "first_batch_s": first,
        "clips_per_s": clips / seconds, "baseline_rss_anon_mib": baseline / 1024,
        "peak_rss_anon_mib": sampler.peak / 1024, "rss_file_mib_at_end": rss_kib()["RssFile"] / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=3.0, help="size of the frames in GB (1e9 bytes)")
    parser.add_argument("--frame-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pose_utils_data_benchmark"))
    parser.add_argument("--warm", action="store_true", help="do not drop the page cache before the epoch")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()

    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.batch_size, args.warm)))
        return

    clip_bytes = 8 * args.frame_size**2 * 3
    clips = math.ceil(args.gb * 1e9 / clip_bytes)
    print(f"dataset: {clips} clips of 8x{args.frame_size}x{args.frame_size}x3 uint8 = "
          f"{clips * clip_bytes / 1e9:.2f} GB of frames, in {args.dir}")
    if args.dir.exists():
        shutil.rmtree(args.dir)
    try:
        t0 = time.perf_counter()
        write_dataset(args.dir, clips, args.frame_size)
        print(f"written in {time.perf_counter() - t0:.0f} s (both layouts)")
        results = []
        for folder in (args.dir, args.dir / "h5"):
            command = [sys.executable, __file__, "--measure", str(folder)]
            command += ["--batch-size", str(args.batch_size)]
            command += ["--warm"] if args.warm else []
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TQDM_DISABLE="1")
            out = subprocess.run(command, check=True, env=env, capture_output=True, text=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)

    float32_gib = clips * clip_bytes * 4 / 2**30
    cache = "warm page cache" if args.warm else "page cache dropped before the epoch"
    print(f"\none shuffled epoch, batch {args.batch_size}, {cache}, {os.cpu_count()} CPU(s):")
    print(f"{'layout':6} {'clips/s':>8} {'MB/s':>7} {'epoch s':>8} {'RssAnon before':>15} "
          f"{'peak RssAnon':>13}")
    for r in results:
        print(f"{r['layout']:6} {r['clips_per_s']:8.1f} {r['clips_per_s'] * clip_bytes / 1e6:7.0f} "
              f"{r['seconds']:8.1f} {r['baseline_rss_anon_mib']:11.0f} MiB {r['peak_rss_anon_mib']:9.0f} MiB")
    print(f"the report's approach (whole split as float32 in memory) would need {float32_gib:.1f} GiB "
          f"({clips} x 8 x {args.frame_size} x {args.frame_size} x 3 x 4 bytes)")
    if args.out:
        from pose_utils.fileio import write_json

        write_json(args.out, {"clips": clips, "frame_size": args.frame_size, "batch_size": args.batch_size,
                              "warm": args.warm, "float32_in_memory_gib": float32_gib, "results": results})


if __name__ == "__main__":
    main()
