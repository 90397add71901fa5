"""The embedded dataset (`python -m pose_utils make-data`): real motion capture rendered into
Human3.6M-style 8-frame clips. docs/dataset.md describes the data; pose_utils.data reads it.

One job per module, imports flowing down the list (none reaches above pose_utils' skeleton, camera,
errors and fileio, except `command`, which alone draws figures):

    command   the CLI command: flags -> config, `make_data` (generate + contact_sheet.png), `main`
    generate  `make_config` (the checked settings), `generate` (both splits, atomically), worker pool
    presets   the data presets tiny, small, course (`DATA_PRESETS`)
    writer    the files of a split: the course's .npy pair and the HDF5 file
    render    pybullet: the humanoid bodies, posing, joint read-out, the CPU renderer (`render_clips`)
    scene     subjects and their cameras, the random draws of a clip, its framing and background
    mocap     the DeepMimic motion-capture clips shipped in pybullet: parsing, slerp, sampling

    from pose_course.datagen import make_config, make_data
    make_data(make_config("data/tiny", preset="tiny"))

`generate.generate` is the same run without the contact sheet; it is not re-exported here, so that
`pose_course.datagen.generate` stays the module.
"""

from pose_course.datagen.command import config_from_args, make_data
from pose_course.datagen.generate import MakeDataConfig, default_workers, make_config
from pose_course.datagen.mocap import Motion, Pose, load_motions, motion_names
from pose_course.datagen.presets import DATA_PRESETS, DataPreset
from pose_course.datagen.render import FRONT_CUES, Clip, Renderer, render_clips
from pose_course.datagen.scene import (
    FPS,
    SPLITS,
    STYLES,
    SUBJECT_INFO,
    SUBJECTS,
    ClipSpec,
    Subject,
    clip_spec,
    principal_point,
)
from pose_course.datagen.writer import FRAMES_COMPRESSION, GENERATOR_VERSION, output_names

__all__ = [
    "DATA_PRESETS", "FPS", "FRAMES_COMPRESSION", "FRONT_CUES", "GENERATOR_VERSION", "SPLITS", "STYLES",
    "SUBJECTS", "SUBJECT_INFO", "Clip", "ClipSpec", "DataPreset", "MakeDataConfig", "Motion", "Pose",
    "Renderer",
    "Subject", "clip_spec", "config_from_args", "default_workers", "load_motions", "make_config",
    "make_data", "motion_names", "output_names", "principal_point", "render_clips",
]
