"""pose_utils.camera: pinhole helpers, checked against pybullet where it has a twin."""

import numpy as np
import pytest

from pose_utils import camera


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_intrinsics_values_and_broadcasting():
    K = camera.intrinsics(100.0, 32.0, 31.0)
    np.testing.assert_array_equal(K, [[100, 0, 32], [0, 100, 31], [0, 0, 1]])
    many = camera.intrinsics(np.array([100.0, 200.0]), 32.0, 31.0)
    assert many.shape == (2, 3, 3) and many[1, 0, 0] == 200 and many[1, 1, 1] == 200
    with pytest.raises(ValueError):
        camera.intrinsics(0.0, 1, 1)


def test_project_divides_by_depth_and_applies_K():
    rng = np.random.default_rng(0)
    K = camera.intrinsics(150.0, 112.0, 111.0)
    points = rng.uniform(-1, 1, (5, 8, 17, 3)) + [0, 0, 4]
    uv = camera.project(points, K)
    assert uv.shape == (5, 8, 17, 2)
    np.testing.assert_allclose(uv, 150.0 * points[..., :2] / points[..., 2:] + [112.0, 111.0], atol=1e-12)
    # the optical axis lands on the principal point; x right / y down stay right / down
    np.testing.assert_allclose(camera.project([0, 0, 3.0], K), [112, 111])
    u, v = camera.project([0.1, 0.2, 2.0], K)
    assert u > 112 and v > 111


def test_project_takes_one_K_per_clip():
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, (3, 8, 17, 3)) + [0, 0, 5]
    Ks = camera.intrinsics(np.array([100.0, 150.0, 200.0]), 64.0, 63.0)
    uv = camera.project(points, Ks)
    for i in range(3):
        np.testing.assert_allclose(uv[i], camera.project(points[i], Ks[i]))


def test_shape_checks():
    K = camera.intrinsics(100.0, 32.0, 32.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        camera.project(np.zeros((4, 2)), K)
    with pytest.raises(ValueError, match="3, 3"):
        camera.project(np.ones((4, 3)), np.eye(4))
    with pytest.raises(ValueError, match="leading axes"):
        camera.project(np.ones((4, 8, 3)), np.stack([K] * 3))
    with pytest.raises(ValueError, match="behind the camera"):
        camera.project([0.0, 0.0, -1.0], K)
    with pytest.raises(ValueError):
        camera.world_to_camera(np.ones((2, 3)), np.eye(3), np.zeros(2))


def test_world_to_camera_and_per_item_extrinsics():
    rng = np.random.default_rng(2)
    R, t = random_rotation(rng), rng.normal(size=3)
    X = rng.normal(size=(10, 3))
    Xc = camera.world_to_camera(X, R, t)
    np.testing.assert_allclose(Xc, X @ R.T + t)
    Rs = np.stack([random_rotation(rng) for _ in range(4)])
    ts = rng.normal(size=(4, 3))
    X = rng.normal(size=(4, 17, 3))
    out = camera.world_to_camera(X, Rs, ts)
    np.testing.assert_allclose(out[2], X[2] @ Rs[2].T + ts[2])


def test_look_at_points_the_optical_axis_at_the_target():
    eye, target = np.array([3.0, 1.8, 2.0]), np.array([0.2, 0.9, -0.1])
    R, t = camera.look_at(eye, target)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(camera.camera_center(R, t), eye, atol=1e-12)
    tc = camera.world_to_camera(target, R, t)
    np.testing.assert_allclose(tc[:2], 0, atol=1e-12)
    assert tc[2] == pytest.approx(np.linalg.norm(target - eye))
    above = camera.world_to_camera(target + [0, 0.5, 0], R, t)
    assert above[1] < 0  # world up is image up (camera y points down)
    with pytest.raises(ValueError):
        camera.look_at(eye, eye)


def test_gl_view_matrix_matches_pybullet():
    pybullet = pytest.importorskip("pybullet")
    eye, target, up = [3.0, 1.6, 0.5], [0.0, 0.9, 0.0], [0.0, 1.0, 0.0]
    view = pybullet.computeViewMatrix(eye, target, up)
    R, t = camera.look_at(eye, target, up)
    np.testing.assert_allclose(camera.gl_view_matrix(R, t), view, atol=1e-6)
    # eye coordinates = camera coordinates with y and z flipped
    M = np.asarray(view).reshape(4, 4).T
    X = np.array([[0.3, 1.2, -0.4]])
    eye_coords = X @ M[:3, :3].T + M[:3, 3]
    expected = camera.world_to_camera(X, R, t)
    np.testing.assert_allclose(eye_coords @ camera.GL_FROM_CAMERA, expected, atol=1e-6)
