"""pose_utils.targets: fitted ranges, exact inversion in NumPy and TensorFlow, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pose_utils.errors import ConfigError, DataError
from pose_utils.targets import (
    KINDS,
    fit_transform,
    load_transform,
    save_transform,
    transform_from_dict,
)


@pytest.fixture
def joints():
    """Root-relative labels (50, 8, 17, 3) float32 metres with a different spread per coordinate."""
    rng = np.random.default_rng(0)
    spread, offset = rng.uniform(0.05, 0.6, (17, 3)), rng.uniform(-0.3, 0.3, (17, 3))
    y = rng.normal(0.0, 1.0, (50, 8, 17, 3)) * spread + offset
    y[:, :, 0, :] = 0.0  # the pelvis never moves: zero range, must not divide by zero
    return y.astype(np.float32)


def test_minmax_maps_each_coordinate_range_onto_the_margins(joints):
    t = fit_transform("minmax", joints, margin=0.1)
    z = t.forward(joints)
    flat = z.reshape(-1, 17, 3)
    np.testing.assert_allclose(flat[:, 1:].min(axis=0), 0.1, atol=1e-12)
    np.testing.assert_allclose(flat[:, 1:].max(axis=0), 0.9, atol=1e-12)
    np.testing.assert_allclose(flat[:, 0], 0.5, atol=1e-12)  # the constant pelvis: the sigmoid's centre
    assert np.isfinite(t.scale).all() and (t.scale > 0).all()
    # A sigmoid output anywhere in (0, 1) maps back to a finite pose a little beyond the training range.
    wide = t.inverse(np.full((17, 3), 0.999))
    assert np.all(wide[1:] > joints.reshape(-1, 17, 3).max(axis=0)[1:])


def test_standard_centres_and_scales_with_a_floor(joints):
    t = fit_transform("standard", joints)
    z = t.forward(joints).reshape(-1, 17, 3)
    np.testing.assert_allclose(z[:, 1:].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z[:, 1:].std(axis=0), 1.0, atol=1e-9)
    np.testing.assert_array_equal(t.scale[0], 1e-3)  # zero std floored at 1 mm
    np.testing.assert_array_equal(z[:, 0], 0.0)


def test_identity_changes_nothing(joints):
    t = fit_transform("identity", joints)
    np.testing.assert_array_equal(t.forward(joints), joints.astype(np.float64))


@pytest.mark.parametrize("kind", KINDS)
def test_numpy_inverse_undoes_forward_exactly(kind, joints):
    t = fit_transform(kind, joints)
    np.testing.assert_allclose(t.inverse(t.forward(joints)), joints, rtol=0, atol=1e-12)
    z = np.random.default_rng(1).uniform(0, 1, joints.shape)
    np.testing.assert_allclose(t.forward(t.inverse(z)), z, rtol=0, atol=1e-9)
    assert t.forward(joints).dtype == np.float64


@pytest.mark.parametrize("kind", KINDS)
def test_tensorflow_path_matches_numpy(kind, joints):
    import tensorflow as tf

    t = fit_transform(kind, joints)
    y = tf.constant(joints)
    z = t.forward(y)
    assert tf.is_tensor(z) and z.dtype == tf.float32
    np.testing.assert_allclose(z.numpy(), t.forward(joints), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(t.inverse(z).numpy(), joints, rtol=0, atol=2e-6)  # float32: ~1 µm

    @tf.function
    def compiled(values):
        return t.inverse(t.forward(values))

    np.testing.assert_allclose(compiled(y).numpy(), joints, rtol=0, atol=2e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_round_trip_exactly(tmp_path, kind, joints):
    t = fit_transform(kind, joints)
    path = tmp_path / "run" / "target_transform.json"
    save_transform(path, t)
    saved = json.loads(path.read_text())
    assert saved["kind"] == kind and saved["units"] == "m" and len(saved["center"]) == 17
    loaded = load_transform(path)
    assert loaded.kind == kind and loaded.params == t.params
    np.testing.assert_array_equal(loaded.center, t.center)
    np.testing.assert_array_equal(loaded.scale, t.scale)
    np.testing.assert_array_equal(loaded.forward(joints), t.forward(joints))
    assert list(tmp_path.joinpath("run").iterdir()) == [path]  # no temporary file left behind


def test_fit_rejects_bad_arguments(joints):
    with pytest.raises(ConfigError, match="unknown target transform 'log'; choose one of: minmax"):
        fit_transform("log", joints)
    with pytest.raises(ConfigError, match="margin"):
        fit_transform("minmax", joints, margin=0.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        fit_transform("minmax", joints[..., :2])
    bad = joints.copy()
    bad[0, 0, 3, 1] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        fit_transform("standard", bad)
    with pytest.raises(DataError, match="zero poses"):
        fit_transform("minmax", joints[:0])


def test_bad_saved_transforms_name_the_file_and_the_problem(tmp_path, joints):
    good = fit_transform("minmax", joints).to_dict()
    cases = {
        "missing": (None, "file not found"),
        "not json": ("{nope", "not valid JSON"),
        "a list": ([], "must be a JSON object"),
        "bad kind": ({**good, "kind": "pca"}, "unknown target transform kind 'pca'"),
        "short scale": ({**good, "scale": good["scale"][:16]}, "'scale' has shape (16, 3), expected (17, 3)"),
        "zero scale": ({**good, "scale": [[0.0] * 3] * 17}, "'scale' must be > 0"),
        "text center": ({**good, "center": "abc"}, "'center' is not a (17, 3) list of numbers"),
        "no center": ({k: v for k, v in good.items() if k != "center"}, "has no 'center'"),
        "future version": ({**good, "version": 99}, "format version 99"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.json"
        if isinstance(content, str):
            path.write_text(content)
        elif content is not None:
            path.write_text(json.dumps(content))
        with pytest.raises(DataError) as info:
            load_transform(path)
        assert str(info.value).startswith(str(path)), name
        assert message in str(info.value), name
    with pytest.raises(DataError, match="NaN or infinite"):
        transform_from_dict({**good, "center": [[float("nan")] * 3] * 17})
