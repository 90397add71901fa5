import numpy as np
import pytest

from pose_utils import skeleton as sk


def test_constants_match_the_report_table():
    assert len(sk.JOINT_NAMES) == sk.NUM_JOINTS == 17
    assert sk.JOINT_NAMES[0] == "Pelvis" and sk.JOINT_NAMES[13] == "LWrist" and sk.JOINT_NAMES[16] == "RWrist"
    assert list(sk.PARENTS) == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
    assert len(sk.BONES) == 16


def test_tree_rooted_at_pelvis():
    # Every joint reaches the root by following parents, and parents come before children.
    for j in range(sk.NUM_JOINTS):
        seen, k = set(), j
        while sk.PARENTS[k] != -1:
            assert sk.PARENTS[k] < k
            seen.add(k)
            k = sk.PARENTS[k]
            assert k not in seen
        assert k == sk.ROOT
    assert [j for j, p in enumerate(sk.PARENTS) if p == -1] == [0]


def test_left_right_pairs_mirror_each_other():
    for left, right in zip(sk.LEFT, sk.RIGHT, strict=True):
        assert sk.JOINT_NAMES[left][1:] == sk.JOINT_NAMES[right][1:]
        assert sk.JOINT_NAMES[left][0] == "L" and sk.JOINT_NAMES[right][0] == "R"
        # Twins hang off twins (or off the same centre joint).
        pl, pr = sk.PARENTS[left], sk.PARENTS[right]
        assert pl == pr or sk.H36M.flip_permutation[pl] == pr
    assert not set(sk.LEFT) & set(sk.RIGHT)


def test_flip_swaps_labels_and_negates_x():
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(4, 8, 17, 3))
    flipped = sk.flip_left_right(poses)
    assert np.allclose(flipped[..., sk.LEFT, 0], -poses[..., sk.RIGHT, 0])
    assert np.allclose(flipped[..., sk.RIGHT, 1:], poses[..., sk.LEFT, 1:])
    assert np.allclose(flipped[..., 0, :], poses[..., 0, :] * [-1, 1, 1])
    assert np.allclose(sk.flip_left_right(flipped), poses)  # an involution
    assert np.allclose(sk.bone_lengths(flipped).sum(-1), sk.bone_lengths(poses).sum(-1))


def test_bone_lengths_by_hand():
    pose = np.zeros((17, 3))
    pose[1] = [0.1, 0, 0]  # RHip, 0.1 from the pelvis
    pose[2] = [0.1, 0.4, 0]  # RKnee, 0.4 below the hip
    lengths = sk.bone_lengths(pose)
    assert lengths.shape == (16,)
    assert lengths[0] == pytest.approx(0.1) and lengths[1] == pytest.approx(0.4)


def test_root_relative_and_shape_errors():
    poses = np.random.default_rng(1).normal(size=(2, 17, 3))
    rel = sk.root_relative(poses)
    assert np.allclose(rel[:, 0], 0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        sk.bone_lengths(np.zeros((16, 3)))
