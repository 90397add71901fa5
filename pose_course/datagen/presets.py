"""The make-data presets (`--preset`): frame size and clip counts of a dataset (docs/dataset.md,
"Presets, sizes and speed"). The flags --frame-size, --train-clips and --valid-clips override them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataPreset:
    frame_size: int
    train_clips: int
    valid_clips: int


DATA_PRESETS = {
    "tiny": DataPreset(64, 32, 16),  # tests: seconds
    "small": DataPreset(224, 480, 160),  # the demo
    "course": DataPreset(224, 5964, 1368),  # the course dataset's clip counts
}
