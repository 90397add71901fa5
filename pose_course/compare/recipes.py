"""The comparison's presets and recipes: which models, trained how, on which data (the TrainConfig values
of each entry, the data preset and the clips used).
"""

from __future__ import annotations

from dataclasses import dataclass

from pose_utils.errors import ConfigError

BASELINE = "mean_pose"


SEED = "seed"


@dataclass(frozen=True)
class Recipe:
    """How one entry is trained and evaluated: `train`, the TrainConfig values that differ per entry
    (TrainConfig checks them; the rest keep its defaults, the report's recipe), and `flip_test`, whether
    its evaluation averages test-time flips (`evaluate.predict`)."""

    train: dict
    flip_test: bool = False

    @property
    def model(self) -> str:
        return self.train["model"]


def recipe(model: str, epochs: int, learning_rate: float, flip_test: bool = False, **train) -> Recipe:
    return Recipe({"model": model, "epochs": epochs, "learning_rate": learning_rate, **train}, flip_test)


@dataclass(frozen=True)
class Preset:
    """A benchmark: which data (a make-data preset) and how each entry trains.

    recipes: entry name -> Recipe for the seed-like models and extra entries. Every other registered
    model gets `default_recipe(model)`, so a newly registered model always appears in the comparison.
    """

    name: str
    data_preset: str
    recipes: dict
    variant_epochs: int
    variant_learning_rate: float
    max_train_clips: int | None = None
    max_valid_clips: int | None = None
    # Hold the frames in memory while training (TrainConfig.cache_frames): same results, and the CNN
    # entries' epochs no longer wait for the file to be decompressed (measured in docs/models.md).
    cache_frames: bool = True

    def default_recipe(self, model: str) -> Recipe:
        """The recipe of a registered model without an entry of its own: the CNN variants'."""
        return recipe(model, self.variant_epochs, self.variant_learning_rate)

    def entries(self) -> dict[str, Recipe]:
        """Entry name -> Recipe, in table order: the seed, the other registered models, extra entries."""
        from pose_utils.models import MODELS

        # the registry's order: the steps from the seed (not the student's challenge model)
        ordered = [SEED] + [n for n in MODELS if n != SEED and MODELS[n].compared]
        entries = {n: self.recipes.get(n) or self.default_recipe(n) for n in ordered}
        entries.update({k: v for k, v in self.recipes.items() if k not in entries})
        return entries


AUGMENT = {"color_jitter": 0.2}  # model option of the CNN variants; flips come from TrainConfig.flip_augment


# The tuned entry: every change measured to help on the `small` data (docs/models.md), together. Not the
# zoom/shift options: with the 2-D keypoint loss they cost 5 mm and 30 % more time (measured, quick).
TUNED_OPTIONS = {"bidirectional": True, "color_jitter": 0.2, "channel_shuffle": True}


def _presets() -> dict[str, Preset]:
    """The presets. Every entry trains for no more time than the seed: at 224×224 a CNN variant's
    training step costs about 1/28 of the seed's on a CPU (it sees the frames at 112×112,
    `input_pool` 2; measured in docs/models.md), so it gets 15 times the seed's epochs and still
    finishes first (cnn_lstm_tuned too, whose bidirectional LSTM, augmentation layers and 2-D keypoint
    head add 10-20 % to a step, so it gets fewer epochs in quick). The seed, seed_tanh and seed_linear
    (the seed's stack, 77 M weights) use the report's recipe, Adam 1e-4 and batch 5; the CNNs Adam 1e-3,
    batch 5."""

    def recipes(seed_epochs: int, variant_epochs: int, tuned_epochs: int) -> dict:
        return {
            SEED: recipe(SEED, seed_epochs, 1e-4),
            "seed_tanh": recipe("seed_tanh", seed_epochs, 1e-4),
            "seed_linear": recipe("seed_linear", seed_epochs, 1e-4),
            "cnn_tcn_aug": recipe("cnn_tcn", variant_epochs, 1e-3, flip_augment=True, model_options=AUGMENT),
            "cnn_lstm_tuned": recipe("cnn_lstm", tuned_epochs, 1e-3, flip_augment=True,
                                     model_options=TUNED_OPTIONS, lr_schedule="cosine", loss="mpjpe",
                                     keypoint_loss=3.0, flip_test=True),
        }

    return {
        # Tests and smoke runs: 64x64, a handful of clips, one epoch each (seconds per model).
        "tiny": Preset("tiny", "tiny", recipes(1, 1, 1), 1, 1e-3, max_train_clips=12, max_valid_clips=8),
        # 20-35 minutes on 2 idle CPU cores: 480 train / 160 held-out clips at 224x224. On the AMD EPYC
        # where they were chosen, 30 CNN epochs took 130-150 s against the seed's 150 s and the tuned
        # entry, whose step costs more, 26 in 131 s; an Intel Xeon runs the CNNs 2-3x slower and the
        # seed faster (docs/models.md, "quick on the everyday default").
        "quick": Preset("quick", "small", recipes(2, 30, 26), 30, 1e-3),
        # The course's clip counts (5,964 / 1,368) at 224x224: about 3 hours on the AMD EPYC, 4-5 on an
        # Intel Xeon. Twelve times the data of quick per epoch, so fewer CNN epochs (20) are enough and
        # stay below the seed's time on the EPYC (the tuned entry's 20 epochs: 1,382 s against 1,666 s);
        # on the Xeon they take 1.7x it (2,806 s against 1,633 s; docs/models.md, "full on the everyday
        # default").
        "full": Preset("full", "course", recipes(2, 20, 20), 20, 1e-3),
    }


PRESETS = _presets()


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown benchmark preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
