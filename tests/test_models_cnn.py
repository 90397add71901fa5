"""The models beyond the report (pose_utils/models/): registry, shapes, sizes, heads, saving."""

import numpy as np
import pytest

from pose_utils import build_model
from pose_utils.errors import ConfigError
from pose_utils.models import available_models, model_spec
from pose_utils.training.step import train_step

VARIANTS = ("seed_linear", "cnn_frame", "cnn_lstm", "cnn_tcn")
CNN_MODELS = ("cnn_frame", "cnn_lstm", "cnn_tcn")


def _clips(n=2, size=64, seed=0):
    return np.random.default_rng(seed).random((n, 8, size, size, 3), dtype=np.float32)


def test_every_variant_is_registered_with_a_linear_head_transform():
    names = available_models()
    for name in VARIANTS:
        assert name in names
        assert model_spec(name).target_transform == "standard"
        assert model_spec(name).description


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_pass_at_64_gives_unbounded_poses(name):
    model = build_model(name, frame_size=64)
    y = model(_clips()).numpy()
    assert y.shape == (2, 8, 17, 3) and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    # A linear head is not confined to (0, 1) like the seed's sigmoid: it produces negative values.
    assert (y < 0).any()
    assert model.get_layer("head").activation.__name__ == "linear"


def test_seed_linear_is_the_seed_with_only_the_head_changed():
    seed, linear = build_model("seed", frame_size=224), build_model("seed_linear", frame_size=224)
    assert linear.count_params() == seed.count_params() == 77_455_233
    assert [type(layer) for layer in linear.layers] == [type(layer) for layer in seed.layers]
    for a, b in zip(seed.layers[1:], linear.layers[1:], strict=True):
        assert tuple(a.output.shape) == tuple(b.output.shape)
    assert seed.get_layer("head").activation.__name__ == "sigmoid"


def test_cnn_backbone_shapes_and_sizes_at_224():
    full = build_model("cnn_lstm", frame_size=224, input_pool=1)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in full.layers[1:]}
    assert shapes["stem_relu"] == (8, 112, 112, 16)
    assert shapes["block3_pool"] == (8, 7, 7, 128)
    assert shapes["flatten"] == (8, 7 * 7 * 32)
    assert shapes["lstm"] == (8, 128)
    assert shapes["pose"] == (8, 17, 3)
    # The default sees the frames at half resolution: every map is half as wide.
    half = build_model("cnn_lstm", frame_size=224)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in half.layers[1:]}
    assert shapes["input_pool"] == (8, 112, 112, 3)
    assert shapes["stem_relu"] == (8, 56, 56, 16)
    assert shapes["flatten"] == (8, 3 * 3 * 32)
    seed_params = build_model("seed", frame_size=224).count_params()
    for name in CNN_MODELS:
        # Over 80x fewer weights than the seed's 77 M: the LSTM no longer reads raw pixels.
        assert build_model(name, frame_size=224, input_pool=1).count_params() * 80 < seed_params


def test_cnn_tcn_output_depends_on_neighbouring_frames_only_through_time_layers():
    frame = build_model("cnn_frame", frame_size=64, dropout=0.0)
    tcn = build_model("cnn_tcn", frame_size=64, dropout=0.0)
    x = _clips(1)
    x2 = x.copy()
    x2[0, 0] = _clips(1, seed=5)[0, 0]  # change only frame 0
    # Per-frame model: frames 1..7 unchanged. Temporal model (kernel 3, 2 layers): frames 1-2 change.
    f1, f2 = frame(x).numpy(), frame(x2).numpy()
    np.testing.assert_array_equal(f1[0, 1:], f2[0, 1:])
    t1, t2 = tcn(x).numpy(), tcn(x2).numpy()
    assert not np.allclose(t1[0, 1], t2[0, 1])
    assert not np.allclose(t1[0, 2], t2[0, 2])
    np.testing.assert_allclose(t1[0, 3:], t2[0, 3:], atol=1e-6)


@pytest.mark.parametrize("name", ["seed_linear", "cnn_tcn", "cnn_lstm"])
def test_save_and_load_in_safe_mode_round_trip(tmp_path, name):
    import keras

    model = build_model(name, frame_size=64, **({} if name == "seed_linear" else {"color_jitter": 0.2}))
    x = _clips()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_mixed_precision_keeps_the_head_float32():
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model("cnn_tcn", frame_size=64)
        assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
        assert model.get_layer("head").compute_dtype == "float32"
        assert model(_clips()).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_options_change_the_model_and_bad_values_are_clear():
    small = build_model("cnn_tcn", frame_size=64, width=8, features=64, temporal_layers=1)
    assert small.count_params() < build_model("cnn_tcn", frame_size=64).count_params()
    assert small.get_layer("stem_conv").filters == 8
    deep = build_model("cnn_frame", frame_size=64, depth=2)
    assert deep.get_layer("block3_2_conv").filters == 128
    assert deep.count_params() > build_model("cnn_frame", frame_size=64).count_params()
    with pytest.raises(ConfigError, match="width must be a positive integer"):
        build_model("cnn_lstm", frame_size=64, width=0)
    with pytest.raises(ConfigError, match="dropout"):
        build_model("cnn_frame", frame_size=64, dropout=1.5)
    with pytest.raises(ConfigError, match="color_jitter"):
        build_model("cnn_frame", frame_size=64, color_jitter=-0.1)
    with pytest.raises(ConfigError, match="kernel must be odd"):
        build_model("cnn_tcn", frame_size=64, kernel=4)
    with pytest.raises(ConfigError, match="frame_size / input_pool must be at least 32.*48 / 2"):
        build_model("cnn_frame", frame_size=48)
    assert build_model("cnn_frame", frame_size=48, input_pool=1).output.shape[1:] == (8, 17, 3)
    with pytest.raises(ConfigError, match="'cnn_lstm' does not take option.*colour_jitter"):
        build_model("cnn_lstm", frame_size=64, colour_jitter=0.2)
    with pytest.raises(ConfigError, match="does not take option"):
        build_model("seed_linear", frame_size=64, width=8)


def test_color_jitter_changes_colours_per_clip_only_in_training():
    from pose_utils.models.layers import ClipColorJitter

    layer = ClipColorJitter(0.3, seed=1)
    # Every frame of a clip is the same flat grey: a per-clip jitter keeps the frames identical.
    x = np.full((4, 8, 6, 6, 3), 0.5, np.float32)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    y = layer(x, training=True).numpy()
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(y, np.broadcast_to(y[:, :1], y.shape))  # same change on all 8 frames
    assert not np.allclose(y[0], y[1])  # clips get different changes
    assert not np.allclose(y[..., 0], y[..., 1])  # channels get different gains


def test_zoom_magnifies_about_the_centre_per_clip_only_in_training():
    from pose_utils.models.layers import ClipZoom

    # One bright pixel 4 columns right of the centre of a 15x15 frame, the same in all 8 frames.
    x = np.zeros((6, 8, 15, 15, 1), np.float32)
    x[:, :, 7, 11] = 1.0
    np.testing.assert_array_equal(ClipZoom(0.3, 0.1, seed=0)(x, training=False).numpy(), x)
    np.testing.assert_array_equal(ClipZoom(0.0, 0.0, seed=0)(x, training=True).numpy(), x)
    y = ClipZoom(0.3, 0.0, seed=2)(x, training=True).numpy()
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))  # one change per clip
    cols = np.arange(15)
    row = y[:, 0, 7, :, 0]
    centroid = (row * cols).sum(axis=1) / row.sum(axis=1) - 7  # where the pixel went, from the centre
    assert np.all((centroid > 4 * 0.7 - 0.5) & (centroid < 4 * 1.3 + 0.5))  # magnified by 0.7..1.3
    assert np.ptp(centroid) > 0.5  # clips get different scales
    assert np.allclose(y[:, 0, 7, 7], 0) and np.allclose(y[:, 0, :6], 0)  # nothing else lights up
    shifted = ClipZoom(0.0, 0.2, seed=3)(x, training=True).numpy()
    assert not np.allclose(shifted, x)


def test_channel_shuffle_permutes_each_clips_channels_only_in_training():
    from pose_utils.models.layers import ClipChannelShuffle

    x = np.broadcast_to(np.array([0.1, 0.5, 0.9], np.float32), (64, 8, 4, 4, 3)).copy()
    layer = ClipChannelShuffle(seed=0)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    y = layer(x, training=True).numpy()
    np.testing.assert_allclose(np.sort(y, axis=-1), x)  # the same values, in another order
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :1, :1], y.shape))  # one order per clip
    assert len({tuple(c) for c in y[:, 0, 0, 0]}) == 6  # 64 clips: every order appears


def test_augmentation_options_are_checked_and_leave_inference_unchanged(tmp_path):
    import keras

    plain = build_model("cnn_lstm", frame_size=64, dropout=0.0)
    augmented = build_model("cnn_lstm", frame_size=64, dropout=0.0, zoom=0.1, shift=0.05,
                            channel_shuffle=True, color_jitter=0.2)
    assert augmented.count_params() == plain.count_params()  # augmentation layers hold no weights
    augmented.set_weights(plain.get_weights())
    x = _clips()
    same = plain(x, training=False).numpy()
    np.testing.assert_allclose(augmented(x, training=False).numpy(), same, atol=1e-6)
    assert not np.allclose(augmented(x, training=True).numpy(), plain(x, training=True).numpy())
    augmented.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.get_layer("zoom").get_config()["zoom"] == pytest.approx(0.1)
    assert loaded.get_layer("channel_shuffle") is not None
    with pytest.raises(ConfigError, match="zoom must be a number in \\[0, 1\\), got 1.5"):
        build_model("cnn_frame", frame_size=64, zoom=1.5)
    with pytest.raises(ConfigError, match="shift"):
        build_model("cnn_frame", frame_size=64, shift=-0.1)
    with pytest.raises(ConfigError, match="channel_shuffle must be true or false, got 'yes'"):
        build_model("cnn_frame", frame_size=64, channel_shuffle="yes")


def test_a_cnn_variant_can_overfit_a_handful_of_clips():
    """Sanity check in the CS231n spirit: a few training steps drive the loss on 4 clips well down."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = build_model("cnn_tcn", frame_size=64, dropout=0.0, input_pool=1)
    x = tf.constant(_clips(4))
    y = tf.constant(np.random.default_rng(1).standard_normal((4, 8, 17, 3)).astype(np.float32))
    opt = keras.optimizers.Adam(3e-3)

    @tf.function
    def step():  # the project's own step (pose_utils.training.step)
        return train_step(model, opt, x, lambda pred: tf.reduce_mean(tf.square(pred - y)))[0]

    first = float(step())
    for _ in range(60):
        last = float(step())
    assert last < 0.3 * first
