"""2-D keypoint labels (pose_utils.keypoints) and how flips, rolls and ClipZoom move them, the keypoint
head (models.keypoint_head.keypoint_model) and training with keypoint_loss, on the rendered tiny preset."""

import json

import numpy as np
import pytest
from toydata import run_cli, write_toy_data

from pose_utils import camera
from pose_utils.data import epoch_order, flip_mask, open_split, roll_angles, tf_dataset
from pose_utils.errors import ConfigError, DataError
from pose_utils.evaluate import load_run
from pose_utils.keypoints import flip_keypoints, project_keypoints, roll_keypoints
from pose_utils.skeleton import ROOT, flip_left_right
from pose_utils.training import KEYPOINT_HISTORY_KEY, TrainConfig, train


def to_pixels(keypoints, size):
    return keypoints * size / 2 + (size - 1) / 2


def dot_clips(pixels, size):
    """(B, T, size, size, 1) black frames with a 3x3 white dot centred on the rounded pixels (B, T, 2)."""
    frames = np.zeros(pixels.shape[:2] + (size, size, 1), np.float32)
    for b, t in np.ndindex(*pixels.shape[:2]):
        u, v = np.round(pixels[b, t]).astype(int)
        frames[b, t, v - 1:v + 2, u - 1:u + 2] = 1.0
    return frames


def centroids(frames):
    """Brightness-weighted centre (B, T, 2) pixels (u, v) of (B, T, H, W, 1) frames."""
    rows, cols = np.mgrid[:frames.shape[2], :frames.shape[3]]
    m = frames[..., 0]
    mass = m.sum(axis=(2, 3))[..., None]
    return np.stack([(m * cols).sum(axis=(2, 3)), (m * rows).sum(axis=(2, 3))], -1) / mass


def test_keypoints_are_the_labels_projected_with_root_and_intrinsics(tiny_data_dir):
    with open_split(tiny_data_dir, "train") as store:
        kp, size = store.keypoints, store.frame_size
        root, K, joints = store.meta["root"], store.meta["intrinsics"], store.joints
    assert kp.shape == joints.shape[:3] + (2,) and kp.dtype == np.float32
    uv = camera.project(joints[3, 5] + root[3, 5], K[3])  # one frame by hand
    np.testing.assert_allclose(to_pixels(kp[3, 5], size), uv, atol=1e-3)
    np.testing.assert_allclose(to_pixels(kp[:, :, ROOT], size),
                               camera.project(root, np.broadcast_to(K[:, None], root.shape[:2] + (3, 3))),
                               atol=1e-3)  # the pelvis keypoint is where the stored root projects
    assert np.abs(kp).max() < 1.5  # the bodies are framed: the joints are in or near the frame


def test_flipped_keypoints_are_the_projections_of_the_mirrored_body(tiny_data_dir):
    with open_split(tiny_data_dir, "train") as store:
        joints, root, K = store.joints, store.meta["root"], store.meta["intrinsics"]
        kp, shape = store.keypoints, store.frame_shape
    mirrored_root = root * np.array([-1, 1, 1], np.float32)
    want = project_keypoints(flip_left_right(joints), mirrored_root, K, shape)
    np.testing.assert_allclose(flip_keypoints(kp), want, atol=1e-5)


def test_keypoints_of_the_course_layout_are_a_plain_error(tmp_path):
    folder = write_toy_data(tmp_path / "npy", n_train=6, n_valid=4, size=32)
    with open_split(folder, "train") as store, pytest.raises(DataError) as e:
        _ = store.keypoints
    assert "videoframes_clips_train.npy" in str(e.value) and "'root'" in str(e.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_zoom_params_say_where_a_dot_goes_and_view_to_frame_undoes_them(seed):
    from pose_utils.models.layers import ClipZoom, ViewToFrame

    size = 64
    kp = np.random.default_rng(seed).uniform(-0.6, 0.6, (4, 8, 17, 2)).astype(np.float32)
    pixels = np.round(to_pixels(kp[:, :, 7], size))
    frames = dot_clips(pixels, size)
    zoom = ClipZoom(0.1, 0.05, seed=seed, return_params=True)
    out, params = (a.numpy() for a in zoom(frames, training=True))
    scale, centre = params[:, :1, None], params[:, None, 1:]
    assert np.all(np.abs(scale - 1) <= 0.1) and np.all(np.abs(centre) <= 0.1) and np.ptp(scale) > 0
    dot = (pixels - (size - 1) / 2) / (size / 2)  # the dot's centre, normalised
    np.testing.assert_allclose(centroids(out), to_pixels(scale * (dot - centre), size), atol=0.25)
    in_view = scale[..., None] * (kp - centre[:, :, None])
    np.testing.assert_allclose(ViewToFrame()([in_view, params]).numpy(), kp, atol=1e-5)
    same, identity = ClipZoom(0.1, 0.05, return_params=True)(frames, training=False)
    np.testing.assert_array_equal(same, frames)
    np.testing.assert_array_equal(identity, np.tile([1.0, 0.0, 0.0], (4, 1)))


def test_rolled_keypoints_are_the_projections_of_the_rolled_body(tiny_data_dir):
    with open_split(tiny_data_dir, "train") as store:
        joints, root, K = store.joints[:4], store.meta["root"][:4], store.meta["intrinsics"][:4]
        kp, shape = store.keypoints[:4], store.frame_shape
    a = np.deg2rad([20.0, -35.0, 0.0, 90.0]).astype(np.float32)
    c, s = np.cos(a)[:, None, None], np.sin(a)[:, None, None]

    def turn(p):  # the camera rolled by a: (x, y) turned about the optical axis
        return np.stack([c * p[..., 0] - s * p[..., 1], s * p[..., 0] + c * p[..., 1], p[..., 2]], -1)

    want = project_keypoints(turn(joints), turn(root[:, :, None])[:, :, 0], K, shape)
    np.testing.assert_allclose(roll_keypoints(kp, a).numpy(), want, atol=1e-5)


def test_tf_dataset_yields_keypoints_moved_by_flips_and_rolls(tiny_data_dir):
    seed, epoch = 3, 1
    with open_split(tiny_data_dir, "train") as store:
        n, kp = len(store), store.keypoints
        batches = list(tf_dataset(store, 8, seed=seed, epoch=epoch, flip_augment=True, roll_augment=20.0,
                                  keypoints=True))
    assert all(len(b) == 3 for b in batches)
    got = np.concatenate([b[2].numpy() for b in batches])
    order = epoch_order(n, seed, epoch)
    flips = flip_mask(n, seed, epoch)[order]
    want = np.where(flips[:, None, None, None], flip_keypoints(kp[order]), kp[order])
    want = roll_keypoints(want, roll_angles(n, seed, epoch, 20.0)[order]).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert 0 < flips.sum() < n


def test_spatial_soft_argmax_finds_a_peak_and_centres_a_flat_map():
    from pose_utils.models.layers import SpatialSoftArgmax

    maps = np.zeros((1, 2, 4, 8, 17), np.float32)
    maps[0, 0, 1, 6, :] = 50.0  # row 1 of 4, column 6 of 8
    out = SpatialSoftArgmax()(maps).numpy()
    np.testing.assert_allclose(out[0, 0], np.tile([(6.5 / 8) * 2 - 1, (1.5 / 4) * 2 - 1], (17, 1)), atol=1e-5)
    np.testing.assert_allclose(out[0, 1], 0.0, atol=1e-6)


@pytest.mark.parametrize("zoom", [0.0, 0.1])
def test_keypoint_model_adds_a_2d_output_to_a_cnn_and_refuses_the_seed(zoom):
    from pose_utils.models import build_model
    from pose_utils.models.keypoint_head import keypoint_model

    model = build_model("cnn_lstm", frame_size=64, zoom=zoom)
    training = keypoint_model(model)
    pose, points = training(np.zeros((2, 8, 64, 64, 3), np.float32), training=True)
    assert pose.shape == (2, 8, 17, 3) and points.shape == (2, 8, 17, 2)
    assert len(model.outputs) == 1  # the pose model itself is unchanged
    extra = {v.path for v in training.weights} - {v.path for v in model.weights}
    assert extra == {"keypoint_maps/kernel", "keypoint_maps/bias"}
    assert ("keypoints" in [ly.name for ly in training.layers]) == bool(zoom)  # ViewToFrame when zooming
    with pytest.raises(ConfigError, match="CNN backbone"):
        keypoint_model(build_model("seed", frame_size=64))


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "3", True])
def test_config_rejects_a_bad_keypoint_loss(value):
    with pytest.raises(ConfigError, match="keypoint_loss"):
        TrainConfig(keypoint_loss=value)


def test_a_run_with_keypoint_loss_learns_the_2d_points_and_saves_the_pose_model_only(tiny_data_dir, tmp_path):
    config = TrainConfig(model="cnn_frame", epochs=4, learning_rate=3e-3, keypoint_loss=3.0,
                         flip_augment=True, model_options={"zoom": 0.1, "shift": 0.05})
    history = train(tiny_data_dir, tmp_path / "kp", config, progress=False)
    errors = history[KEYPOINT_HISTORY_KEY]
    assert len(errors) == 4 and errors[-1] < 0.9 * errors[0], errors  # measured: 0.383 -> 0.315
    run = load_run(tmp_path / "kp")
    assert len(run.model.outputs) == 1 and run.model.output.shape[1:] == (8, 17, 3)
    resumed = train(tiny_data_dir, tmp_path / "kp", config.replace(epochs=5), resume=True, progress=False)
    assert len(resumed[KEYPOINT_HISTORY_KEY]) == 5 and resumed[KEYPOINT_HISTORY_KEY][:4] == errors


def test_keypoint_loss_on_course_npy_data_is_a_plain_error_before_training(tmp_path):
    folder = write_toy_data(tmp_path / "npy", n_train=6, n_valid=4, size=64)
    result = run_cli("train", "--data", folder, "--out", tmp_path / "r", "--model", "cnn_frame",
                     "--keypoint-loss", "3")
    assert result.returncode != 0
    assert "'root'" in result.stderr and "videoframes_clips_train.npy" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith("error:")
    assert not (tmp_path / "r" / "checkpoint.json").exists()


def test_cli_passes_the_keypoint_flag_and_refuses_a_bad_one(tiny_data_dir, tmp_path):
    result = run_cli("train", "--data", tiny_data_dir, "--out", tmp_path / "r", "--model", "cnn_frame",
                     "--epochs", "1", "--max-train-clips", "10", "--max-valid-clips", "4",
                     "--keypoint-loss", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["keypoint_loss"] == 2.0
    assert KEYPOINT_HISTORY_KEY in json.loads((tmp_path / "r" / "history.json").read_text())
    bad = run_cli("train", "--data", tiny_data_dir, "--out", tmp_path / "b", "--keypoint-loss", "-1")
    assert bad.returncode != 0 and "keypoint_loss" in bad.stderr and "Traceback" not in bad.stderr
    seed = run_cli("train", "--data", tiny_data_dir, "--out", tmp_path / "s", "--keypoint-loss", "1")
    assert seed.returncode != 0 and "CNN backbone" in seed.stderr and "Traceback" not in seed.stderr
