"""`python -m pose_utils make-data`: the command layer over the generator. It reads the flags and adds
the one output that needs plotting, contact_sheet.png (pose_utils.plots, imported only when drawing),
so the generator's own modules stay free of matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pose_course.datagen.generate import MakeDataConfig, generate, make_config
from pose_course.datagen.scene import FPS, SPLITS
from pose_utils import camera
from pose_utils.skeleton import NUM_FRAMES


def config_from_args(args) -> MakeDataConfig:
    """The config of parsed make-data flags (pose_course.cli); a bad value raises ConfigError."""
    return make_config(args.out, preset=args.preset, format=args.format, seed=args.seed,
                       workers=args.workers, frame_size=args.frame_size, train_clips=args.train_clips,
                       valid_clips=args.valid_clips, front_cues=args.front_cues,
                       hidden_subjects=getattr(args, "hidden_subjects", False),
                       style=getattr(args, "style", None))


def make_data(cfg: MakeDataConfig, progress: bool = True) -> dict:
    """What `make-data` does, without its printing: `generate` with the contact sheet. Returns the
    summary dict of `generate`."""
    return generate(cfg, progress=progress, contact_sheet=write_contact_sheet)


def write_contact_sheet(path: Path, samples: dict, cfg: MakeDataConfig) -> None:
    """Frames 0, 3 and 7 of the kept clips with their labels projected on them."""
    from pose_utils.plots import contact_sheet

    frames, joints_2d, titles = [], [], []
    for split in SPLITS:
        for _, clip in sorted(samples[split].items()):
            for i in (0, 3, NUM_FRAMES - 1):
                frames.append(clip["frames"][i])
                joints_2d.append(camera.project(clip["joints"][i] + clip["root"][i], clip["intrinsics"]))
                flag = " M" if clip["mirrored"] else ""
                tag = f"{split} {clip['subject']} {clip['action']} c{clip['camera']}{flag}"
                titles.append(tag if i == 0 else f"frame {i}")
    fig = contact_sheet(np.stack(frames), np.stack(joints_2d), titles=titles, ncols=9, panel_inches=1.8,
                        suptitle=f"make-data preset={cfg.preset} style={cfg.style} seed={cfg.seed}"
                                 f"{' front-cues' if cfg.front_cues else ''}"
                                 f"{' hidden-subjects' if cfg.hidden_subjects else ''} ({cfg.frame_size} px, "
                                 f"{FPS:g} fps), frames 0, 3, 7 of each clip; labels projected with "
                                 "the stored intrinsics (blue left, red right); c = camera, M = mirrored")
    fig.savefig(path, format="png", dpi=100)


def main(args) -> int:
    """`python -m pose_utils make-data`: render the dataset (see docs/dataset.md)."""
    cfg = config_from_args(args)
    summary = make_data(cfg)
    total = sum(summary["clips"].values())
    print(f"wrote {total} clips ({summary['clips']['train']} train, {summary['clips']['valid']} valid) of "
          f"{NUM_FRAMES} frames at {cfg.frame_size}x{cfg.frame_size} to {cfg.out} in "
          f"{summary['seconds']:.1f} s with {summary['workers']} worker(s): {', '.join(summary['files'])}")
    return 0
