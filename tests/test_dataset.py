"""pose_course.datagen (`make-data`): the embedded dataset's contract, checked on real renders.

Most tests read the session's `tiny_data_dir` (conftest.py); the others render a few clips in-process
with render.render_clips, which gives the same clips make-data writes for a seed.
"""

import filecmp
import math

import h5py
import numpy as np
import pytest

from pose_course.cli import build_parser, main
from pose_course.datagen import config_from_args, make_config, mocap, render, scene, writer
from pose_utils import camera
from pose_utils.errors import ConfigError
from pose_utils.skeleton import JOINT_NAMES, LEFT, RIGHT, bone_lengths, flip_left_right

NPY = ("videoframes_clips_{}.npy", "joint_3d_clips_{}.npy")
LIMB_LEFT = (5, 6, 12, 13)  # LKnee, LAnkle, LElbow, LWrist: joints inside a limb's silhouette
LIMB_RIGHT = (2, 3, 15, 16)


def read_h5(folder, split):
    with h5py.File(folder / f"{split}.h5", "r") as f:
        data = {k: f[k].asstr()[()] if h5py.check_string_dtype(f[k].dtype) else f[k][()] for k in f}
        strings = {k for k in f if h5py.check_string_dtype(f[k].dtype) is not None}
        assert strings == {"subject", "action"}
        assert all(h5py.check_string_dtype(f[k].dtype).encoding == "utf-8" for k in strings)
        attrs = dict(f.attrs)
        chunks, compression = f["frames"].chunks, f["frames"].compression
    return data, attrs, chunks, compression


def dilate(mask, r):
    """Binary dilation by a (2r+1)^2 square over the last two axes."""
    out = mask.copy()
    h, w = mask.shape[-2:]
    padded = np.pad(mask, [(0, 0)] * (mask.ndim - 2) + [(r, r), (r, r)])
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= padded[..., dy:dy + h, dx:dx + w]
    return out


def at(image, uv):
    """image (8, H, W) sampled at the rounded pixels uv (8, J, 2) -> (8, J)."""
    r = np.rint(uv).astype(int)
    return image[np.arange(len(image))[:, None], r[..., 1], r[..., 0]]


# ----------------------------------------------------------------------------- files, shapes, units
def test_files_shapes_dtypes_and_attributes(tiny_data_dir):
    for split, n in (("train", 32), ("valid", 16)):
        data, attrs, chunks, compression = read_h5(tiny_data_dir, split)
        assert data["frames"].shape == (n, 8, 64, 64, 3) and data["frames"].dtype == np.uint8
        assert chunks == (1, 8, 64, 64, 3) and compression == writer.FRAMES_COMPRESSION
        assert data["joints"].shape == (n, 8, 17, 3) and data["joints"].dtype == np.float32
        assert data["root"].shape == (n, 8, 3) and data["root"].dtype == np.float32
        assert data["intrinsics"].shape == (n, 3, 3) and data["intrinsics"].dtype == np.float32
        assert data["camera"].dtype == np.int16 and set(data["camera"]) <= {0, 1, 2, 3}
        assert data["start_time"].dtype == np.float32 and data["speed"].dtype == np.float32
        assert data["mirrored"].dtype == bool
        assert list(attrs["joint_names"]) == list(JOINT_NAMES)
        assert attrs["units"] == "m" and attrs["fps"] == scene.FPS and attrs["seed"] == 0
        assert attrs["preset"] == "tiny" and attrs["split"] == split and attrs["frame_size"] == 64
        assert attrs["generator_version"] == writer.GENERATOR_VERSION and attrs["front_cues"]
        assert attrs["style"] == "everyday"  # the default of tiny, small and course
        assert "x right" in attrs["coordinate_frame"]
        # the course layout holds the same arrays and loads without pickle
        frames = np.load(tiny_data_dir / NPY[0].format(split), allow_pickle=False)
        joints = np.load(tiny_data_dir / NPY[1].format(split), allow_pickle=False)
        np.testing.assert_array_equal(frames, data["frames"])
        np.testing.assert_array_equal(joints, data["joints"])
    assert (tiny_data_dir / "contact_sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_labels_are_root_relative_metres_in_camera_coordinates(tiny_data_dir):
    data, *_ = read_h5(tiny_data_dir, "train")
    joints, root = data["joints"], data["root"]
    assert np.all(joints[:, :, 0] == 0)  # the pelvis is exactly the origin
    reach = np.linalg.norm(joints, axis=-1).max(axis=-1)  # farthest joint from the pelvis, metres
    assert 0.5 < reach.min() and reach.max() < 1.6
    assert np.all((root[..., 2] > 2.0) & (root[..., 2] < 9.0))  # a few metres in front of the camera
    # y points down: in upright motions the head is above (smaller y than) the pelvis
    upright = np.isin(data["action"], ["walk", "run", "punch", "dance_a", "dance_b"])
    assert np.mean(joints[upright][..., 10, 1] < 0) > 0.95
    # the intrinsics describe a square frame's pinhole with the renderer's principal point
    K = data["intrinsics"]
    assert np.all(K[:, 0, 0] == K[:, 1, 1]) and np.all(K[:, 0, 0] > 32)
    assert np.all(K[:, :2, 2] == 31.5)  # the principal point is the frame's centre


def test_bones_are_rigid_within_a_clip_and_fixed_per_subject(tiny_data_dir):
    for split in ("train", "valid"):
        data, *_ = read_h5(tiny_data_dir, split)
        lengths = bone_lengths(data["joints"])  # (N, 8, 16) metres
        assert np.ptp(lengths, axis=1).max() < 0.002
        for subject in set(data["subject"]):
            mine = lengths[data["subject"] == subject]
            assert np.ptp(mine.reshape(-1, 16), axis=0).max() < 0.002  # one body per subject
        # each subject's bones are the same body scaled by its height: shin + thigh + spine .. head
        chain = lengths[..., [1, 2, 6, 7, 8, 9]].sum(-1)
        heights = np.array([scene.SUBJECT_INFO[s].height for s in data["subject"]])
        ratio = chain / heights[:, None]
        assert np.ptp(ratio) < 0.005 and 0.9 < ratio.mean() < 1.0


def test_hidden_subjects_play_every_clip_and_no_student_has_them(tmp_path):
    assert not set(scene.HIDDEN_SUBJECTS) & (set(scene.SUBJECTS["train"]) | set(scene.SUBJECTS["valid"]))
    out = tmp_path / "hidden"
    assert main(["make-data", "--out", str(out), "--preset", "tiny", "--format", "h5", "--seed", "9137",
                 "--hidden-subjects", "--workers", "1", "--train-clips", "4", "--valid-clips", "8"]) == 0
    valid, attrs, *_ = read_h5(out, "valid")
    assert set(valid["subject"]) <= set(scene.HIDDEN_SUBJECTS) and len(set(valid["subject"])) >= 2
    assert bool(attrs["hidden_subjects"]) and attrs["seed"] == 9137
    spec = scene.clip_spec(0, "valid", 3, mocap.load_motions(), hidden=True)
    assert spec.subject in scene.HIDDEN_SUBJECTS


def test_subjects_are_disjoint_and_every_motion_is_in_both_splits(tiny_data_dir):
    train, *_ = read_h5(tiny_data_dir, "train")
    valid, *_ = read_h5(tiny_data_dir, "valid")
    train_subjects, valid_subjects = set(train["subject"]), set(valid["subject"])
    assert train_subjects <= set(scene.SUBJECTS["train"]) and valid_subjects <= set(scene.SUBJECTS["valid"])
    assert not train_subjects & valid_subjects and len(train_subjects) >= 3
    motions = set(scene.EVERYDAY_MOTIONS)  # the default style's upright motions
    assert set(train["action"]) == motions == set(valid["action"])
    assert 0.2 < np.mean(np.concatenate([train["mirrored"], valid["mirrored"]])) < 0.8
    assert np.all((train["speed"] >= 0.8) & (train["speed"] <= 1.25))


def test_subject_heights_are_adult(tiny_data_dir):
    pybullet = pytest.importorskip("pybullet")
    with render.Renderer(64) as renderer:
        for name, info in scene.SUBJECT_INFO.items():
            assert 1.55 <= info.height <= 1.90
            body = renderer.body(name)
            pybullet.resetBasePositionAndOrientation(body, [0, 0, 0], [0, 0, 0, 1],
                                                     physicsClientId=renderer.client)
            pybullet.resetJointStatesMultiDof(body, [1, 2, 3, 5, 6, 9, 11, 12], [[0, 0, 0, 1]] * 8,
                                              physicsClientId=renderer.client)
            boxes = [pybullet.getAABB(body, i, physicsClientId=renderer.client) for i in range(15)]
            height = max(b[1][1] for b in boxes) - min(b[0][1] for b in boxes)
            assert height == pytest.approx(info.height, abs=0.01), name


# ----------------------------------------------------------------------------- labels agree with pixels
@pytest.fixture(scope="module")
def rendered():
    """Clips 0-14 of the tiny valid split (one per motion) with their segmentation masks."""
    return render.render_clips(0, "valid", range(15), 64, with_mask=True)


def test_rendered_clips_are_the_ones_make_data_wrote(tiny_data_dir, rendered):
    data, *_ = read_h5(tiny_data_dir, "valid")
    for clip in rendered[:4]:
        i = clip.spec.index
        np.testing.assert_array_equal(clip.frames, data["frames"][i])
        np.testing.assert_array_equal(clip.joints, data["joints"][i])
        assert clip.spec.subject == data["subject"][i] and clip.spec.mirrored == data["mirrored"][i]


def test_projected_joints_fall_inside_the_frame_and_on_the_body(rendered):
    on, near, spans = [], [], []
    for clip in rendered:
        uv = camera.project(clip.joints + clip.root[:, None], clip.K)
        assert np.all((uv >= 0) & (uv <= 63)), clip.spec
        body = clip.mask > 0
        rows, cols = np.nonzero(body.any(axis=0))  # the person fills most of the frame (Human3.6M crops)
        spans.append(max(np.ptp(rows), np.ptp(cols)) + 1)
        on.append(at(body, uv))
        near.append(at(dilate(body, 2), uv))
    # joint centres sit where capsules meet, so some fall just off the silhouette (docs/dataset.md: about
    # 75 % land on it)
    assert np.mean(on) > 0.6
    assert np.all(near)
    assert min(spans) >= 0.6 * 64 and np.median(spans) >= 0.75 * 64


def test_projection_matches_the_renderer_pixel_convention():
    """Squares rendered at random places: their pixel centroids match camera.project with the clip
    intrinsics to within the half-pixel quantisation, and without bias (a half-pixel or one-pixel
    offset of the principal point would show up in the mean)."""
    pybullet = pytest.importorskip("pybullet")
    client = pybullet.connect(pybullet.DIRECT)
    try:
        shape = pybullet.createVisualShape(pybullet.GEOM_BOX, halfExtents=[0.15, 0.15, 0.001],
                                           physicsClientId=client)
        R, t = camera.look_at([0.0, 0.0, 4.0], [0.0, 0.0, 0.0])
        view = camera.gl_view_matrix(R, t)
        rng = np.random.default_rng(0)
        for size, principal in ((64, None), (101, None), (224, None), (64, (20.0, 40.0))):
            f = (size / 2.0) / math.tan(math.radians(40.0) / 2.0)  # a 40 degree field of view
            K = camera.intrinsics(f, *(principal or scene.principal_point(size)))
            if principal is None:  # without the off-centre terms it is computeProjectionMatrixFOV's matrix
                fov = pybullet.computeProjectionMatrixFOV(40.0, 1.0, 0.05, 100.0, physicsClientId=client)
                plain = render.gl_projection(camera.intrinsics(K[0, 0], size / 2, size / 2 - 1), size)
                np.testing.assert_allclose(plain, fov, atol=1e-6)
            errors = []
            for centre in rng.uniform(-0.5, 0.5, (12, 3)) * [1, 1, 0]:
                box = pybullet.createMultiBody(baseVisualShapeIndex=shape, basePosition=centre.tolist(),
                                               physicsClientId=client)
                seg = pybullet.getCameraImage(size, size, view, render.gl_projection(K, size),
                                              renderer=pybullet.ER_TINY_RENDERER, physicsClientId=client)[4]
                pybullet.removeBody(box, physicsClientId=client)
                rows, cols = np.nonzero(np.reshape(seg, (size, size)) == box)
                uv = camera.project(camera.world_to_camera(centre, R, t), K)
                errors.append((cols.mean() - uv[0], rows.mean() - uv[1]))
            errors = np.array(errors)
            assert np.abs(errors).max() < 0.5 and np.all(np.abs(errors.mean(axis=0)) < 0.1), (size, errors)
    finally:
        pybullet.disconnect(client)


def test_mirroring_flips_pixels_and_swaps_left_right_labels():
    plain, = render.render_clips(0, "train", [7], 64, with_mask=True, mirrored=False)
    mirror, = render.render_clips(0, "train", [7], 64, with_mask=True, mirrored=True)
    np.testing.assert_array_equal(mirror.frames, plain.frames[:, :, ::-1])
    np.testing.assert_allclose(mirror.joints, flip_left_right(plain.joints), atol=1e-6)
    np.testing.assert_allclose(mirror.root[:, 0], -plain.root[:, 0], atol=1e-6)
    np.testing.assert_array_equal(mirror.K, plain.K)  # the principal point is the centre: x -> -x exactly
    uv = camera.project(mirror.joints + mirror.root[:, None], mirror.K)
    assert np.all(at(dilate(mirror.mask > 0, 2), uv))


@pytest.mark.parametrize("mirrored", [False, True])
def test_left_labels_sit_on_the_pictured_persons_left_limbs(rendered, mirrored):
    """The body's own left links are 9-14 (mask 10-15), right 3-8 (mask 4-9). In a mirror image the
    pictured person's left side is the body's right side, so the labels must swap with the picture."""
    clips = render.render_clips(0, "valid", range(15), 64, with_mask=True, mirrored=mirrored)
    hits = {"agree": 0, "disagree": 0}
    for clip in clips:
        uv = camera.project(clip.joints + clip.root[:, None], clip.K)
        body_left = dilate((clip.mask >= 10) & (clip.mask <= 15), 1)
        body_right = dilate((clip.mask >= 4) & (clip.mask <= 9), 1)
        pictured_left, pictured_right = (body_right, body_left) if mirrored else (body_left, body_right)
        for joints, own, other in ((LIMB_LEFT, pictured_left, pictured_right),
                                   (LIMB_RIGHT, pictured_right, pictured_left)):
            a, b = at(own, uv[:, joints]), at(other, uv[:, joints])
            hits["agree"] += int(np.sum(a & ~b))
            hits["disagree"] += int(np.sum(b & ~a))
    # occlusion (a left wrist behind the right leg) makes a few disagree; swapped labels would flip this
    assert hits["agree"] > 10 * hits["disagree"], hits
    assert set(LEFT) == {4, 5, 6, 11, 12, 13} and set(RIGHT) == {1, 2, 3, 14, 15, 16}


# ----------------------------------------------------------------------------- styles
def test_styles_differ_in_motions_cameras_and_room_and_nothing_else():
    motions = mocap.load_motions()
    everyday = [scene.clip_spec(0, "train", i, motions) for i in range(45)]
    hard = [scene.clip_spec(0, "train", i, motions, style="hard") for i in range(45)]
    # everyday: the upright motions only, cameras at chest height 4.1-5.6 m away, one room and one light
    assert {s.action for s in everyday} == set(scene.EVERYDAY_MOTIONS)
    assert not {"backflip", "cartwheel", "crawl", "roll", "getup_facedown"} & {s.action for s in everyday}
    assert all(1.45 <= s.rig[1] <= 1.65 and 4.1 <= s.rig[2] <= 5.6 for s in everyday)
    assert len({(s.floor, s.sky, s.tile, s.light_direction, s.light_color) for s in everyday}) == 1
    # hard: all 15 motions, cameras from knee to above head height, a new floor, sky and light per clip
    assert {s.action for s in hard} == set(mocap.motion_names())
    assert min(s.rig[1] for s in hard) < 1.2 and max(s.rig[1] for s in hard) > 1.9
    assert len({(s.floor, s.sky, s.tile) for s in hard}) == 45
    # the clip's own draws are the same (subject and camera follow the motion, so they differ)
    for e, h in zip(everyday, hard, strict=True):
        assert (e.yaw, e.speed, e.mirrored, e.fill, e.aim) == (h.yaw, h.speed, h.mirrored, h.fill, h.aim)
    # the same azimuths: one camera near each corner of the room
    assert scene.camera_rig("S1", 2, "everyday")[0] == scene.camera_rig("S1", 2, "hard")[0]


def test_statistics_of_a_dataset_side_by_side(tiny_data_dir, capsys):
    from pose_course.datagen import statistics

    # a body facing the camera (its front towards -z) is at 0 degrees, turned away at 180
    body = np.zeros((17, 3))
    body[1], body[4], body[10] = (-0.1, 0, 0), (0.1, 0, 0), (0, -0.6, 0)  # RHip left in the image: faces us
    assert statistics.facing_degrees(body) == pytest.approx(0)
    body[:, 0] *= -1
    assert statistics.facing_degrees(body) == pytest.approx(180)
    numbers = statistics.statistics(tiny_data_dir)
    assert numbers["style"] == "everyday" and numbers["clips"] == (32, 16) and numbers["front_cues"]
    assert set(numbers["motions"]) == set(scene.EVERYDAY_MOTIONS) and numbers["upright"] > 0.9
    assert 3.5 < numbers["distance_m"][1] < 6.5 and 10 < numbers["fov_deg"][1] < 60
    assert 100 < numbers["mean_pose_mpjpe_mm"] < 400 and numbers["per_joint_mm"]["Pelvis"] == 0
    assert statistics.main([str(tiny_data_dir), str(tiny_data_dir)]) == 0
    table = capsys.readouterr().out
    assert "mean pose MPJPE (valid)" in table and table.count("(everyday)") == 2
    with pytest.raises(SystemExit, match="not found"):
        statistics.statistics(tiny_data_dir / "missing")


# ----------------------------------------------------------------------------- front/back cues
def test_front_cues_change_only_head_and_chest_pixels_and_no_label():
    plain = render.render_clips(0, "valid", range(6), 64, with_mask=True, front_cues=False)
    cued = render.render_clips(0, "valid", range(6), 64, with_mask=True)  # the everyday default: cues on
    cue_links = {link + 1 for link, *_ in render.FRONT_CUES}  # mask values: link index + 1
    assert cue_links == {render.HEAD_LINK + 1, render.CHEST_LINK + 1}
    for a, b in zip(plain, cued, strict=True):
        np.testing.assert_array_equal(a.joints, b.joints)
        np.testing.assert_array_equal(a.root, b.root)
        np.testing.assert_array_equal(a.K, b.K)
        changed = np.any(a.frames != b.frames, axis=-1)
        assert changed.any(axis=(1, 2)).all(), b.spec  # the cues are in view in every frame
        # every changed pixel shows a cue, which the mask counts as the link it rides on
        assert np.isin(b.mask[changed], list(cue_links)).all(), b.spec


def test_make_data_front_cues_flag(tiny_data_dir, tmp_path):
    # the everyday style (tiny's) has the cues on; --no-front-cues takes them off and changes no label
    out = tmp_path / "plain"
    assert main(["make-data", "--out", str(out), "--preset", "tiny", "--format", "h5", "--no-front-cues",
                 "--workers", "2", "--train-clips", "4", "--valid-clips", "2"]) == 0
    plain, attrs, *_ = read_h5(out, "train")
    cued, *_ = read_h5(tiny_data_dir, "train")
    assert not attrs["front_cues"]
    np.testing.assert_array_equal(plain["joints"], cued["joints"][:4])
    assert not np.array_equal(plain["frames"], cued["frames"][:4])
    # each subject's cue colours: hair from the palette, a nose darker than the skin, a print unlike the shirt
    for name, info in scene.SUBJECT_INFO.items():
        colors = render.cue_colors(name)
        assert colors["hair"] in render.HAIR_COLORS and colors == render.cue_colors(name)
        assert sum(colors["nose"]) < sum(info.skin) and colors["print"] != info.shirt


# ----------------------------------------------------------------------------- determinism, atomicity, errors
def test_same_seed_same_bytes_whatever_the_worker_count(tiny_data_dir, tmp_path):
    out = tmp_path / "again"
    assert main(["make-data", "--out", str(out), "--preset", "tiny", "--seed", "0", "--workers", "2"]) == 0
    names = sorted(p.name for p in tiny_data_dir.iterdir())
    assert names == sorted(p.name for p in out.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(tiny_data_dir, out, names, shallow=False)
    assert not mismatch and not errors


def test_another_seed_differs_and_clips_do_not_depend_on_the_count(tiny_data_dir, tmp_path):
    def frames(folder, split="train"):
        return np.load(folder / NPY[0].format(split), allow_pickle=False)

    other = tmp_path / "seed1"
    assert main(["make-data", "--out", str(other), "--preset", "tiny", "--seed", "1", "--format", "npy",
                 "--train-clips", "16", "--valid-clips", "16"]) == 0
    a, b = frames(tiny_data_dir)[:16], frames(other)
    assert b.shape == (16, 8, 64, 64, 3)
    assert all(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    fewer = tmp_path / "fewer"
    assert main(["make-data", "--out", str(fewer), "--preset", "tiny", "--format", "npy",
                 "--train-clips", "3", "--valid-clips", "2", "--workers", "1"]) == 0
    np.testing.assert_array_equal(frames(fewer), frames(tiny_data_dir)[:3])
    assert not (fewer / "train.h5").exists()


def test_a_failure_leaves_no_files_and_keeps_the_old_dataset(tmp_path, monkeypatch):
    out = tmp_path / "data"
    out.mkdir()
    (out / "train.h5").write_bytes(b"previous dataset")
    calls = {"n": 0}
    real = render.Renderer.render_clip

    def failing(self, spec, with_mask=False):
        calls["n"] += 1
        if calls["n"] > 10:
            raise RuntimeError("renderer crashed")
        return real(self, spec, with_mask)

    monkeypatch.setattr(render.Renderer, "render_clip", failing)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        main(["make-data", "--out", str(out), "--preset", "tiny", "--workers", "1"])
    assert sorted(p.name for p in out.iterdir()) == ["train.h5"]
    assert (out / "train.h5").read_bytes() == b"previous dataset"


@pytest.mark.parametrize("flags, message", [
    (["--frame-size", "8"], "--frame-size must be between 32 and 1024"),
    (["--seed", "-1"], "--seed must be a non-negative integer"),
])
def test_bad_flags_give_a_plain_error(tmp_path, capsys, flags, message):
    assert main(["make-data", "--out", str(tmp_path / "d"), "--preset", "tiny", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_bad_output_paths_give_a_plain_error(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["make-data", "--out", str(a_file), "--preset", "tiny"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert main(["make-data", "--out", str(a_file / "sub"), "--preset", "tiny"]) == 2
    assert "cannot create the folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse rejects unknown presets and formats itself
        main(["make-data", "--out", str(tmp_path), "--preset", "huge"])


def test_contact_sheet_draws_the_skeletons_in_side_colours():
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_hex

    from pose_utils import plots

    clip, = render.render_clips(0, "train", [14], 64)
    uv = camera.project(clip.joints + clip.root[:, None], clip.K)
    fig = plots.contact_sheet(clip.frames[:3], uv[:3], titles=["walk", "", "f2"], ncols=2, suptitle="t")
    ax, = fig.axes
    bones = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(bones) == 3  # one skeleton per frame, clipped to its own panel
    colours = {to_hex(c) for c in bones[0].get_colors()}
    assert colours == {plots.LEFT_COLOR, plots.RIGHT_COLOR, plots.CENTER_COLOR}
    assert all(len(c.get_segments()) == 16 for c in bones)
    with pytest.raises(ValueError, match="joints_2d"):
        plots.contact_sheet(clip.frames[:3], uv[:2])
    with pytest.raises(ValueError, match="titles"):
        plots.contact_sheet(clip.frames[:3], uv[:3], titles=["a"])


# The generator's layers (only its command draws; nothing imports above the subject's skeleton, camera,
# errors and fileio) are an import contract in pyproject.toml, checked by `lint-imports` in make test.


def test_make_config_checks_like_the_flags(tmp_path):
    cfg = make_config(tmp_path / "d", preset="tiny", format="h5", seed=3, workers=2)
    assert (cfg.frame_size, cfg.train_clips, cfg.valid_clips, cfg.formats) == (64, 32, 16, ("h5",))
    assert (cfg.seed, cfg.workers, cfg.front_cues, cfg.style) == (3, 2, True, "everyday")
    hard = make_config(tmp_path / "d", preset="hard")
    assert (hard.style, hard.front_cues, hard.frame_size, hard.train_clips) == ("hard", False, 224, 480)
    assert make_config(tmp_path / "d", preset="tiny", style="hard", front_cues=True).front_cues
    assert make_config(tmp_path / "d", frame_size=96, train_clips=5).frame_size == 96
    args = build_parser().parse_args(["make-data", "--out", str(tmp_path / "d"), "--workers", "2"])
    assert config_from_args(args) == make_config(tmp_path / "d", workers=2)
    for kwargs, message in (({"preset": "huge"}, "--preset must be one of"),
                            ({"format": "zip"}, "--format must be h5, npy or both"),
                            ({"seed": -1}, "--seed must be a non-negative integer"),
                            ({"frame_size": 8}, "--frame-size must be between 32 and 1024"),
                            ({"train_clips": -2}, "--train-clips must be positive"),
                            ({"workers": -1}, "--workers must be positive"),
                            ({"style": "acrobatic"}, "--style must be one of")):
        with pytest.raises(ConfigError, match=message):
            make_config(tmp_path / "d", **kwargs)
