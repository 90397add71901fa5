"""The make-data presets (`--preset`): frame size, clip counts and style of a dataset (docs/dataset.md,
"Presets, sizes and speed"; the styles are scene.STYLES). The flags --frame-size, --train-clips,
--valid-clips and --style override them."""

from __future__ import annotations

from dataclasses import dataclass

from pose_course.datagen.scene import DEFAULT_STYLE


@dataclass(frozen=True)
class DataPreset:
    frame_size: int
    train_clips: int
    valid_clips: int
    style: str = DEFAULT_STYLE


DATA_PRESETS = {
    "tiny": DataPreset(64, 32, 16),  # tests: seconds
    "small": DataPreset(224, 480, 160),  # the demo
    "course": DataPreset(224, 5964, 1368),  # the course dataset's clip counts
    "hard": DataPreset(224, 480, 160, style="hard"),  # small's size, every motion: the first releases' data
}
