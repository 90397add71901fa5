"""pose_course.datagen.mocap: parsing pybullet's DeepMimic clips, slerp, sampling, looping."""

import json
import math

import numpy as np
import pytest

from pose_course.datagen import mocap
from pose_utils.errors import DataError

EXPECTED = {"backflip", "cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown", "getup_faceup", "jump",
            "kick", "punch", "roll", "run", "spin", "spinkick", "walk"}
NOT_LOOPING = {"getup_facedown", "getup_faceup", "kick", "punch"}


@pytest.fixture(scope="module")
def motions():
    return mocap.load_motions()


def pose_at(motion, t):
    """The pose at time `t` seconds: one frame of `sample`."""
    return motion.sample(t, 1, 1.0)[0]


def random_quats(rng, n):
    return mocap.quat_normalize(rng.normal(size=(n, 4)))


def test_all_fifteen_clips_parse_with_their_loop_flags(motions):
    assert set(motions) == EXPECTED
    assert list(motions) == sorted(EXPECTED)
    assert {n for n, m in motions.items() if not m.loop} == NOT_LOOPING
    total = sum(m.num_key_frames for m in motions.values())
    assert 1500 < total < 1800  # "~1,600 key frames in all"
    for m in motions.values():
        assert np.all(np.diff(m.times) > 0) and m.times[0] == 0
        assert 0.7 < m.duration < 5
        assert np.allclose(np.linalg.norm(m.root_rotation, axis=1), 1)
        assert len(m.joints) == len(mocap.JOINTS)


def test_key_frames_come_back_exactly(motions):
    walk = motions["walk"]
    raw = np.asarray(json.loads((mocap.motions_dir() / "humanoid3d_walk.txt").read_text())["Frames"])
    for k in (0, 5, walk.num_key_frames - 2):
        pose = pose_at(walk, walk.times[k])
        np.testing.assert_allclose(pose.root_position, raw[k, 1:4], atol=1e-12)
        w, x, y, z = raw[k, 4:8] / np.linalg.norm(raw[k, 4:8])
        assert abs(np.dot(pose.root_rotation, [x, y, z, w])) == pytest.approx(1.0)  # q or -q
        assert pose.joints[3][0] == pytest.approx(raw[k, 20])  # right knee angle


def test_slerp_matches_pybullet():
    pybullet = pytest.importorskip("pybullet")
    rng = np.random.default_rng(0)
    a, b = random_quats(rng, 20), random_quats(rng, 20)
    for qa, qb, f in zip(a, b, rng.uniform(0, 1, 20), strict=True):
        ours = mocap.quat_slerp(qa, qb, f)
        ref = np.asarray(pybullet.getQuaternionSlerp(qa.tolist(), qb.tolist(), float(f)))
        assert np.allclose(ours, ref, atol=1e-6) or np.allclose(ours, -ref, atol=1e-6)


def test_slerp_endpoints_midpoint_and_short_arc():
    rng = np.random.default_rng(1)
    a, b = random_quats(rng, 5), random_quats(rng, 5)
    np.testing.assert_allclose(mocap.quat_slerp(a, b, 0.0), a, atol=1e-12)
    ends = mocap.quat_slerp(a, b, 1.0)
    assert np.allclose(np.abs(np.sum(ends * b, axis=1)), 1.0)
    z90 = mocap.quat_from_axis_angle((0, 0, 1), math.pi / 2)
    half = mocap.quat_slerp(np.array([0, 0, 0, 1.0]), z90, 0.5)
    np.testing.assert_allclose(half, mocap.quat_from_axis_angle((0, 0, 1), math.pi / 4), atol=1e-12)
    # -q is the same rotation: slerp must still take the 45 degree way, not the 315 degree one
    half = mocap.quat_slerp(np.array([0, 0, 0, 1.0]), -z90, 0.5)
    assert abs(np.dot(half, mocap.quat_from_axis_angle((0, 0, 1), math.pi / 4))) == pytest.approx(1.0)
    # a fraction per item broadcasts
    many = mocap.quat_slerp(a, b, np.linspace(0, 1, 5)[:, None])
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0)


def test_between_key_frames_positions_and_hinges_are_linear(motions):
    run = motions["run"]
    k = 3
    t = (run.times[k] + run.times[k + 1]) / 2
    pose = pose_at(run, t)
    np.testing.assert_allclose(pose.root_position, (run.root_position[k] + run.root_position[k + 1]) / 2)
    knee = mocap.JOINTS.index(("left_knee", 10, 1))
    assert pose.joints[knee][0] == pytest.approx((run.joints[knee][k, 0] + run.joints[knee][k + 1, 0]) / 2)


def test_sample_spaces_frames_by_speed_over_fps(motions):
    walk = motions["walk"]
    poses = walk.sample(0.3, 8, fps=25.0, speed=1.5)
    assert len(poses) == 8
    for i, pose in enumerate(poses):
        ref = pose_at(walk, 0.3 + 1.5 * i / 25.0)
        np.testing.assert_allclose(pose.root_position, ref.root_position, atol=1e-12)
    with pytest.raises(ValueError):
        walk.sample(0.0, 8, fps=0.0)


def test_wrap_clips_loop_continuously(motions):
    walk = motions["walk"]
    T = walk.duration
    before, after = pose_at(walk, T - 1e-4), pose_at(walk, T + 1e-4)
    # no jump back to the start: the root keeps walking forward and keeps its heading
    assert np.linalg.norm(after.root_position - before.root_position) < 0.01
    assert abs(mocap.heading(after.root_rotation) - mocap.heading(before.root_rotation)) < 0.01
    # one cycle later the local joint rotations repeat, the root has moved by the cycle's displacement
    a, b = pose_at(walk, 0.4), pose_at(walk, 0.4 + T)
    for ja, jb in zip(a.joints, b.joints, strict=True):
        assert np.allclose(ja, jb) or np.allclose(ja, -jb)
    step = np.linalg.norm((walk.root_position[-1] - walk.root_position[0])[[0, 2]])
    assert np.linalg.norm((b.root_position - a.root_position)[[0, 2]]) == pytest.approx(step, rel=0.05)
    # going back a cycle undoes going forward one
    q1, R1, s1 = walk._cycle_transform(1)
    q2, R2, s2 = walk._cycle_transform(-1)
    np.testing.assert_allclose(R2 @ (R1 @ np.array([0.3, 0.9, -0.2]) + s1) + s2, [0.3, 0.9, -0.2], atol=1e-12)


def test_clips_that_do_not_loop_clamp_and_limit_start_times(motions):
    kick = motions["kick"]
    end = pose_at(kick, kick.duration)
    np.testing.assert_allclose(pose_at(kick, kick.duration + 1.0).root_position, end.root_position)
    lo, hi = kick.start_range(0.5)
    assert lo == 0 and hi == pytest.approx(kick.duration - 0.5)
    assert motions["walk"].start_range(0.5) == (0.0, motions["walk"].duration)
    with pytest.raises(ValueError):
        kick.start_range(kick.duration + 1)


def test_transformed_turns_about_the_vertical(motions):
    pose = pose_at(motions["walk"], 0.2)
    turned = pose.transformed(yaw=math.pi / 2, offset=(1.0, 0.0, 0.0), scale=2.0)
    x, y, z = pose.root_position * 2.0
    np.testing.assert_allclose(turned.root_position, [z + 1.0, y, -x], atol=1e-12)
    h0, h1 = mocap.heading(pose.root_rotation), mocap.heading(turned.root_rotation)
    assert math.remainder(h1 - h0 - math.pi / 2, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)
    indices, values = turned.joint_targets()
    assert indices == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13]
    assert [len(v) for v in values] == [4, 4, 4, 1, 4, 4, 1, 4, 1, 4, 4, 1]


@pytest.mark.parametrize("content, message", [
    ("not json", "not a DeepMimic motion file"),
    ('{"Loop": "wrap"}', "not a DeepMimic motion file"),
    ('{"Loop": "wrap", "Frames": [[0.1, 1, 2]]}', "expected at least 2 key frames of 44"),
    ('{"Loop": "sometimes", "Frames": ' + json.dumps([[0.1] + [0.0] * 43] * 2) + "}", '"Loop" must be'),
    ('{"Loop": "none", "Frames": ' + json.dumps([[0.0] * 44] * 2) + "}", "durations must be positive"),
])
def test_bad_motion_files_give_plain_errors(tmp_path, content, message):
    path = tmp_path / "humanoid3d_bad.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        mocap.parse_motion(path)
    assert str(path) in str(err.value)


def test_missing_files_and_folders_give_plain_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        mocap.parse_motion(tmp_path / "humanoid3d_nothing.txt")
    with pytest.raises(DataError, match="no humanoid3d_"):
        mocap.load_motions(tmp_path)
