import numpy as np
import pytest

from pose_utils import build_model
from pose_utils.errors import ConfigError
from pose_utils.models import available_models, model_spec

# The report's layer table at 224x224 (batch axis omitted).
SEED_SHAPES_224 = {
    "conv": (8, 220, 220, 32),
    "pool": (8, 110, 110, 32),
    "flatten": (8, 387200),
    "lstm": (8, 50),
    "head": (8, 51),
    "pose": (8, 17, 3),
}


def test_seed_matches_the_report_at_224():
    model = build_model("seed", frames=8, frame_size=224)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers[1:]}
    assert shapes == SEED_SHAPES_224
    assert model.count_params() == 77_455_233
    assert model.get_layer("lstm").count_params() == 4 * (387200 * 50 + 50 * 50 + 50)
    assert model.get_layer("head").activation.__name__ == "sigmoid"


def test_seed_forward_pass_at_64():
    model = build_model("seed", frame_size=64)
    x = np.random.default_rng(0).random((2, 8, 64, 64, 3), dtype=np.float32)
    y = model(x).numpy()
    assert y.shape == (2, 8, 17, 3)
    assert np.all((y > 0) & (y < 1))  # the sigmoid head lives in (0, 1): targets must be scaled


def test_seed_is_registered_with_a_minmax_target():
    assert "seed" in available_models()
    assert model_spec("seed").target_transform == "minmax"


def test_bad_names_and_options_are_clear():
    with pytest.raises(ConfigError, match="unknown model 'sed'.*seed"):
        build_model("sed")
    with pytest.raises(ConfigError, match="does not take option"):
        build_model("seed", frame_size=64, units=3)
    with pytest.raises(ConfigError, match="frame_size"):
        build_model("seed", frame_size=0)
