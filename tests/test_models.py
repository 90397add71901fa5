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


def test_batched_lstm_is_the_stock_lstm(tmp_path):
    """The seed's LSTM (one input projection for all frames) computes what keras.layers.LSTM computes,
    with the same weights, forward and backward, and saves and loads in safe mode."""
    import keras
    import tensorflow as tf

    from pose_utils.models.layers import BatchedLSTM

    keras.utils.set_random_seed(0)
    x = tf.Variable(np.random.default_rng(0).normal(size=(3, 8, 300)).astype(np.float32))
    stock, batched = keras.layers.LSTM(50, return_sequences=True), BatchedLSTM(50, return_sequences=True)
    stock.build(x.shape)
    batched.build(x.shape)
    assert [w.shape for w in batched.weights] == [w.shape for w in stock.weights]
    batched.set_weights(stock.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        ys, yb = stock(x), batched(x)
        ls, lb = tf.reduce_sum(ys**2), tf.reduce_sum(yb**2)
    np.testing.assert_allclose(yb.numpy(), ys.numpy(), atol=1e-6)
    for gs, gb in zip(tape.gradient(ls, stock.trainable_variables + [x]),
                      tape.gradient(lb, batched.trainable_variables + [x]), strict=True):
        np.testing.assert_allclose(gb.numpy(), gs.numpy(), rtol=1e-4, atol=1e-6)
    model = build_model("seed", frame_size=16)
    model.save(tmp_path / "seed.keras")
    loaded = keras.models.load_model(tmp_path / "seed.keras", compile=False, safe_mode=True)
    clip = np.random.default_rng(1).random((1, 8, 16, 16, 3), dtype=np.float32)
    np.testing.assert_array_equal(loaded(clip).numpy(), model(clip).numpy())


def test_seed_tanh_is_the_report_as_its_code_ran():
    """The report's stack with a tanh head on raw metres: same shapes and parameters as the seed."""
    from pose_utils.training import TrainConfig

    model = build_model("seed_tanh", frame_size=224)
    assert model.count_params() == 77_455_233
    assert {ly.name: tuple(ly.output.shape[1:]) for ly in model.layers[1:]} == SEED_SHAPES_224
    assert model.get_layer("head").activation.__name__ == "tanh"
    assert model_spec("seed_tanh").target_transform == "identity"  # trained on the labels in metres
    assert TrainConfig(model="seed_tanh").transform_kind == "identity"
    small = build_model("seed_tanh", frame_size=32)
    x = np.random.default_rng(0).random((2, 8, 32, 32, 3), dtype=np.float32)
    y = small(x).numpy()
    assert y.shape == (2, 8, 17, 3) and np.all((y > -1) & (y < 1))  # metres, root-relative
