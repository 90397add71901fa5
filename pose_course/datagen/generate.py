"""The run of make-data: its checked settings (`make_config`), the pool of render processes, and
`generate`, which renders both splits into the output folder atomically.

Each clip: a subject (body scale and colours, `scene`) plays one of pybullet's 15 DeepMimic
motion-capture clips (`mocap`) from a random start time at a random playback speed, turned by a random
yaw, seen by one of the subject's 4 cameras, rendered by pybullet's CPU renderer (`render`) and
sometimes mirrored left/right; `writer` stores the splits. docs/dataset.md describes the data;
pose_utils.data reads it.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from pose_course.datagen import mocap
from pose_course.datagen.presets import DATA_PRESETS
from pose_course.datagen.render import Renderer
from pose_course.datagen.scene import DEFAULT_STYLE, FPS, SPLITS, STYLES, clip_spec
from pose_course.datagen.writer import (
    COORDINATE_FRAME,
    GENERATOR_VERSION,
    SplitWriter,
    output_names,
    stack_clips,
)
from pose_utils.errors import ConfigError, PoseUtilsError
from pose_utils.fileio import atomic_path
from pose_utils.skeleton import JOINT_NAMES, NUM_FRAMES, NUM_JOINTS

FORMATS = {"h5": ("h5",), "npy": ("npy",), "both": ("npy", "h5")}
CONTACT_SHEET = "contact_sheet.png"
# Clips kept for the contact sheet (clip i plays motion i mod the style's motion count).
SHEET_INDICES = {"train": (14, 11, 8, 3, 12, 6), "valid": (9, 1, 7)}


@dataclass(frozen=True)
class MakeDataConfig:
    out: Path
    preset: str
    formats: tuple[str, ...]
    seed: int
    workers: int
    frame_size: int
    train_clips: int
    valid_clips: int
    front_cues: bool = False  # render.FRONT_CUES on the bodies
    hidden_subjects: bool = False  # scene.HIDDEN_SUBJECTS play every clip (a grader's hidden clips)
    style: str = DEFAULT_STYLE  # scene.STYLES: the motions and camera rigs


def make_config(out, preset: str = "small", format: str = "both", seed: int = 0, workers: int | None = None,
                frame_size: int | None = None, train_clips: int | None = None,
                valid_clips: int | None = None, front_cues: bool | None = None,
                hidden_subjects: bool = False, style: str | None = None) -> MakeDataConfig:
    """make-data's settings, checked: the command's flags and defaults, None meaning the preset's value
    (workers: the CPUs this process may use; front_cues: the style's). A bad value raises ConfigError
    with one plain message naming the flag."""
    if preset not in DATA_PRESETS:
        raise ConfigError(f"--preset must be one of {sorted(DATA_PRESETS)}, got {preset!r}")
    chosen = DATA_PRESETS[preset]
    style = style or chosen.style
    if style not in STYLES:
        raise ConfigError(f"--style must be one of {sorted(STYLES)}, got {style!r}")
    if front_cues is None:
        front_cues = STYLES[style].front_cues
    formats = FORMATS.get(format)
    if formats is None:
        raise ConfigError(f"--format must be h5, npy or both, got {format!r}")
    if seed is None or not 0 <= int(seed) < 2**63:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed}")
    size = frame_size or chosen.frame_size
    if not 32 <= size <= 1024:
        raise ConfigError(f"--frame-size must be between 32 and 1024 pixels, got {size}")
    counts = [train_clips or chosen.train_clips, valid_clips or chosen.valid_clips]
    for flag, n in zip(("--train-clips", "--valid-clips"), counts, strict=True):
        if n <= 0:
            raise ConfigError(f"{flag} must be positive, got {n}")
    n_workers = workers or default_workers()
    if not n_workers or n_workers <= 0:
        raise ConfigError(f"--workers must be positive, got {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    return MakeDataConfig(out, preset, formats, int(seed), int(n_workers), int(size), *counts,
                          front_cues=bool(front_cues), hidden_subjects=bool(hidden_subjects), style=style)


def default_workers() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def estimated_bytes(cfg: MakeDataConfig) -> int:
    """Disk space the run needs at most (frames uncompressed in every format)."""
    clips = cfg.train_clips + cfg.valid_clips
    per_clip = NUM_FRAMES * (cfg.frame_size**2 * 3 + NUM_JOINTS * 3 * 4)
    return clips * per_clip * len(cfg.formats) + (1 << 20)


# (path, samples, cfg) -> None: draws the sheet of the kept clips, samples[split][index] = one clip's
# arrays; the command layer passes one (pose_course.datagen.command), the generator does no plotting.
ContactSheet = Callable[[Path, dict, MakeDataConfig], None]


def generate(cfg: MakeDataConfig, progress: bool = True, contact_sheet: ContactSheet | None = None) -> dict:
    """Render both splits into cfg.out atomically: every file is written under a temporary name and
    renamed only once all are complete, so a failure or interrupt leaves no half-written dataset.
    `contact_sheet`: also write contact_sheet.png with it (`command.make_data` does).
    Returns a summary dict (clips, files, seconds, workers, cpu_seconds)."""
    import time

    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    cpu0 = {who: _cpu_seconds(who) for who in ("self", "children")}  # children: finished workers
    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {cfg.out}: cannot create the folder ({e.strerror})") from None
    if not os.access(cfg.out, os.W_OK):
        raise ConfigError(f"--out {cfg.out}: folder is not writable")
    free = shutil.disk_usage(cfg.out).free
    if free < estimated_bytes(cfg):
        raise ConfigError(f"--out {cfg.out}: needs about {estimated_bytes(cfg) / 1e9:.1f} GB, only "
                          f"{free / 1e9:.1f} GB free")
    motions = mocap.load_motions()
    counts = {"train": cfg.train_clips, "valid": cfg.valid_clips}
    # At most 4 MiB of frames per task: results are pickled back whole and held until written.
    per_task = max(1, min(8, (1 << 22) // (NUM_FRAMES * cfg.frame_size**2 * 3)))
    tasks = [(cfg.seed, split, lo, min(lo + per_task, counts[split]), cfg.hidden_subjects, cfg.style)
             for split in SPLITS for lo in range(0, counts[split], per_task)]
    workers = min(cfg.workers, len(tasks))
    samples: dict[str, dict] = {"train": {}, "valid": {}}
    files = []
    with contextlib.ExitStack() as stack:
        # Start the workers first: no pybullet client and no open HDF5 file exist in this process yet.
        if workers > 1:
            # spawn, not fork: the parent may hold threads (TensorFlow, h5py) that a fork would copy
            pool = ProcessPoolExecutor(workers, mp.get_context("spawn"), _worker_init,
                                       (cfg.frame_size, cfg.front_cues))
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            results = _ordered_map(pool, _worker_render, tasks, window=4 * workers)
        else:
            renderer = stack.enter_context(Renderer(cfg.frame_size, motions, cfg.front_cues))
            results = (_render_task(renderer, task) for task in tasks)
        writers = {}
        for split in SPLITS:
            names = output_names(split)
            paths = {}
            for key, name in names.items():
                if ("h5" if key == "h5" else "npy") in cfg.formats:
                    paths[key] = stack.enter_context(atomic_path(cfg.out / name))
                    files.append(name)
            attrs = {"joint_names": list(JOINT_NAMES), "units": "m", "coordinate_frame": COORDINATE_FRAME,
                     "fps": FPS, "generator_version": GENERATOR_VERSION, "seed": cfg.seed,
                     "preset": cfg.preset, "split": split, "frame_size": cfg.frame_size,
                     "front_cues": cfg.front_cues, "hidden_subjects": cfg.hidden_subjects, "style": cfg.style}
            writers[split] = SplitWriter(split, counts[split], cfg.frame_size, paths, attrs)
            stack.callback(writers[split].close)
        if contact_sheet is not None:
            sheet = stack.enter_context(atomic_path(cfg.out / CONTACT_SHEET))
            files.append(CONTACT_SHEET)
        bar = stack.enter_context(tqdm(total=sum(counts.values()), unit="clip", desc="make-data",
                                       disable=not progress or None))
        for batch in _plain_errors(results):
            writers[batch["split"]].write(batch)
            _keep_samples(samples[batch["split"]], batch, counts[batch["split"]])
            bar.update(len(batch["frames"]))
        for w in writers.values():
            w.close()
        if contact_sheet is not None:
            contact_sheet(sheet, samples, cfg)
    return {"clips": counts, "files": files, "seconds": time.perf_counter() - t0, "workers": workers,
            "cpu_seconds": {who: _cpu_seconds(who) - cpu0[who] for who in cpu0}}


def _cpu_seconds(who: str) -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sheet_indices(split: str, n: int) -> tuple[int, ...]:
    return tuple(i for i in SHEET_INDICES[split] if i < n) or tuple(range(min(3, n)))


def _keep_samples(kept: dict, batch: dict, n: int) -> None:
    """Keep the clips of `batch` that the contact sheet shows."""
    for i in _sheet_indices(batch["split"], n):
        if batch["lo"] <= i < batch["lo"] + len(batch["frames"]):
            j = i - batch["lo"]
            kept[i] = {k: batch[k][j] for k in ("frames", "joints", "root", "intrinsics", "subject", "action",
                                                 "camera", "mirrored")}


# ----------------------------------------------------------------------------- worker processes
_WORKER: dict = {}


def _worker_init(frame_size: int, front_cues: bool) -> None:
    _WORKER["renderer"] = Renderer(frame_size, front_cues=front_cues)


def _worker_render(task: tuple[int, str, int, int, bool, str]) -> dict:
    return _render_task(_WORKER["renderer"], task)


def _render_task(renderer: Renderer, task: tuple[int, str, int, int, bool, str]) -> dict:
    """Render clips [lo, hi) of a split; returns stacked arrays (what the writers store)."""
    seed, split, lo, hi, hidden, style = task
    clips = [renderer.render_clip(clip_spec(seed, split, i, renderer.motions, hidden=hidden, style=style))
             for i in range(lo, hi)]
    return stack_clips(split, lo, clips)


def _plain_errors(results):
    try:
        yield from results
    except BrokenProcessPool:
        raise PoseUtilsError("a render worker process failed to start or died (out of memory? a script "
                             "read from stdin, which spawned workers cannot re-import?); try --workers 1 "
                             "or --debug") from None


def _ordered_map(pool, func, tasks, window: int):
    """pool.map that keeps at most `window` tasks in flight (bounded memory) and yields in order.
    A crashed worker raises BrokenProcessPool instead of hanging."""
    pending = deque()
    for task in tasks:
        pending.append(pool.submit(func, task))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
