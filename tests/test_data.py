"""pose_utils.data: both layouts, validation messages (API and check-data), streaming into tf.data."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from pose_course import cli
from pose_utils.data import (
    ClipStore,
    DataWarning,
    epoch_order,
    flip_mask,
    open_split,
    tf_dataset,
    validate_dir,
)
from pose_utils.errors import ConfigError, DataError
from pose_utils.skeleton import JOINT_NAMES, flip_left_right
from pose_utils.targets import fit_transform

ROOT_DIR = Path(__file__).resolve().parents[1]
N_TRAIN, N_VALID, SIZE = 7, 3, 8


# ----------------------------------------------------------------------------- writing small datasets


def make_clips(n: int, size: int = SIZE, seed: int = 0):
    """Random frames (n, 8, size, size, 3) uint8 and root-relative labels (n, 8, 17, 3) float32 metres."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, 8, size, size, 3), dtype=np.uint8)
    joints = rng.uniform(-0.9, 0.9, (n, 8, 17, 3)).astype(np.float32)
    joints[:, :, 0, :] = 0.0  # pelvis at the origin
    return frames, joints


def write_npy(d: Path, split: str, frames, joints) -> None:
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / f"videoframes_clips_{split}.npy", frames)
    np.save(d / f"joint_3d_clips_{split}.npy", joints)


def write_h5(d: Path, split: str, frames, joints, attrs=None, meta=True) -> None:
    """The generator's layout: chunked per clip, lzf, metadata datasets and file attributes."""
    d.mkdir(parents=True, exist_ok=True)
    n = len(frames)
    with h5py.File(d / f"{split}.h5", "w") as f:
        chunks = (1,) + frames.shape[1:] if frames.ndim == 5 and n else None
        f.create_dataset("frames", data=frames, chunks=chunks, compression="lzf" if chunks else None)
        f.create_dataset("joints", data=joints)
        if meta:
            f.create_dataset("subject", data=[f"S{i % 2 + 1}" for i in range(n)], dtype=h5py.string_dtype())
            f.create_dataset("action", data=["walk"] * n, dtype=h5py.string_dtype())
            f.create_dataset("camera", data=np.arange(n) % 3, dtype=np.int16)
            f.create_dataset("mirrored", data=np.zeros(n, bool))
        all_attrs = {"units": "m", "joint_names": list(JOINT_NAMES), "split": split, "fps": 30.0}
        all_attrs.update(attrs or {})
        for key, value in all_attrs.items():
            if value is not None:
                f.attrs[key] = value


def write_both_splits(d: Path, layout: str, train=None, valid=None) -> Path:
    writer = write_npy if layout == "npy" else write_h5
    writer(d, "train", *(train or make_clips(N_TRAIN, seed=1)))
    writer(d, "valid", *(valid or make_clips(N_VALID, seed=2)))
    return d


@pytest.fixture
def clips():
    return make_clips(N_TRAIN, seed=1)


@pytest.fixture
def npy_dir(tmp_path):
    return write_both_splits(tmp_path / "npy", "npy")


@pytest.fixture
def h5_dir(tmp_path):
    return write_both_splits(tmp_path / "h5", "h5")


# ----------------------------------------------------------------------------- opening


@pytest.mark.parametrize("layout", ["npy", "h5"])
def test_open_split_exposes_the_contract(tmp_path, layout, clips):
    frames, joints = clips
    d = write_both_splits(tmp_path, layout)
    with open_split(d, "train") as store:
        assert isinstance(store, ClipStore)
        assert store.layout == layout and store.split == "train" and len(store) == N_TRAIN
        assert store.num_frames == 8 and store.frame_shape == (SIZE, SIZE) and store.frame_size == SIZE
        assert store.joints.dtype == np.float32 and store.joints.shape == (N_TRAIN, 8, 17, 3)
        np.testing.assert_array_equal(store.joints, joints)
        np.testing.assert_array_equal(store.frames[[1, 4, 5]], frames[[1, 4, 5]])
        order = [5, 0, 5, 3, 2]  # any order, repeats allowed
        np.testing.assert_array_equal(store.read_frames(order), frames[order])
        assert store.read_frames([]).shape == (0, 8, SIZE, SIZE, 3)
        with pytest.raises(IndexError):
            store.read_frames([N_TRAIN])
    with pytest.raises(DataError, match="closed"):
        store.frames  # noqa: B018


def test_fortran_ordered_npy_reads_through_the_memmap(tmp_path, clips):
    frames, joints = clips
    np.save(tmp_path / "videoframes_clips_train.npy", np.asfortranarray(frames))
    np.save(tmp_path / "joint_3d_clips_train.npy", joints)
    with open_split(tmp_path, "train") as store:
        assert store._reader._raw is None  # clips are not contiguous on disk: no pread
        np.testing.assert_array_equal(store.read_frames([6, 0, 1, 2]), frames[[6, 0, 1, 2]])


def test_h5_metadata_attrs_and_summary(h5_dir):
    with open_split(h5_dir, "train") as store:
        assert list(store.meta["subject"][:3]) == ["S1", "S2", "S1"]
        assert store.meta["camera"].dtype == np.int16
        assert store.attrs["units"] == "m" and store.attrs["joint_names"] == list(JOINT_NAMES)
        text = store.summary()
    assert "train: 7 clips of 8 frames 8x8" in text and "train.h5" in text
    assert "subjects: S1 (4), S2 (3)" in text and "cameras: 0 (3), 1 (2), 2 (2)" in text
    assert "labels in mm: x " in text


def test_h5_is_preferred_when_both_layouts_are_present(tmp_path, clips):
    write_npy(tmp_path, "train", *clips)
    write_h5(tmp_path, "train", *clips)
    with open_split(tmp_path, "train") as store:
        assert store.layout == "h5"
        assert "using train.h5" in store.summary()


def test_millimetre_labels_convert_with_units_mm(tmp_path, clips):
    frames, joints = clips
    write_npy(tmp_path, "train", frames, joints * 1000)
    with open_split(tmp_path, "train", units="mm") as store:
        np.testing.assert_allclose(store.joints, joints, atol=1e-7)


def test_labels_that_are_not_root_relative_warn_but_open(tmp_path):
    frames, joints = make_clips(N_TRAIN, seed=1)
    write_both_splits(tmp_path, "npy", train=(frames, joints + np.float32(0.5)))
    with pytest.warns(DataWarning, match="not root-relative"):
        store = open_split(tmp_path, "train")
    assert "not root-relative" in store.warnings[0]
    store.close()
    assert "warning: joint_3d_clips_train.npy: labels are not root-relative" in validate_dir(tmp_path)


def test_non_square_frames_open_but_have_no_frame_size(tmp_path):
    frames, joints = make_clips(3)
    write_npy(tmp_path, "train", np.zeros((3, 8, 6, 10, 3), np.uint8), joints)
    with open_split(tmp_path, "train") as store:
        assert store.frame_shape == (6, 10)
        with pytest.raises(DataError, match="6x10 pixels; the models need square frames"):
            store.frame_size  # noqa: B018


def test_pickled_store_reopens_by_name(h5_dir):
    with open_split(h5_dir, "train") as store:
        with pickle.loads(pickle.dumps(store)) as copy:
            np.testing.assert_array_equal(copy.read_frames([6, 1]), store.read_frames([6, 1]))
            np.testing.assert_array_equal(copy.joints, store.joints)


def test_forked_child_reopens_the_h5_file(h5_dir, tmp_path):
    # A fresh interpreter (no TensorFlow threads) forks after opening; the child must read correctly.
    script = textwrap.dedent(f"""
        import os, numpy as np
        from pose_utils.data import open_split
        store = open_split({str(h5_dir)!r}, "train")
        parent_handle = store._reader._h5
        expected = store.read_frames([2, 4])
        pid = os.fork()
        if pid == 0:
            ok = np.array_equal(store.read_frames([2, 4]), expected)
            ok = ok and store._reader._h5 is not parent_handle
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "child read wrong frames or reused the handle"
        assert np.array_equal(store.read_frames([2, 4]), expected)
        print("fork ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT_DIR)
    assert result.returncode == 0, result.stderr
    assert "fork ok" in result.stdout


def test_a_damaged_chunk_mid_file_is_reported_when_read(tmp_path):
    frames, joints = make_clips(N_TRAIN)
    frames[:] = np.arange(SIZE, dtype=np.uint8)[:, None, None]  # compressible, so lzf really runs
    write_h5(tmp_path, "train", frames, joints)
    with h5py.File(tmp_path / "train.h5") as f:
        chunk = f["frames"].id.get_chunk_info(3)  # clip 3 (first and last clip stay intact)
    data = bytearray((tmp_path / "train.h5").read_bytes())
    garbage = np.random.default_rng(0).integers(0, 256, chunk.size, dtype=np.uint8).tobytes()
    data[chunk.byte_offset : chunk.byte_offset + chunk.size] = garbage
    (tmp_path / "train.h5").write_bytes(bytes(data))
    with open_split(tmp_path, "train") as store:  # opens: only clips 0 and 6 are read at open
        with pytest.raises(DataError, match=r"train.h5: cannot read clip 3, the file is corrupt"):
            store.read_frames([3])
        import tensorflow as tf

        with pytest.raises(tf.errors.OpError, match=r"DataError: .*train.h5: cannot read clips 2..3"):
            collect(tf_dataset(store, 2, shuffle=False))


def test_check_data_prints_both_splits(h5_dir, capsys):
    assert cli.main(["check-data", str(h5_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{h5_dir}: OK")
    assert "train: 7 clips" in out and "valid: 3 clips" in out


# ----------------------------------------------------------------------------- bad inputs


def _npy(tmp_path, frames=None, joints=None):
    f, j = make_clips(N_TRAIN, seed=1)
    train = (f if frames is None else frames, j if joints is None else joints)
    return write_both_splits(tmp_path, "npy", train=train)


def _h5(tmp_path, frames=None, joints=None, **kwargs):
    f, j = make_clips(N_TRAIN, seed=1)
    write_h5(tmp_path, "train", f if frames is None else frames, j if joints is None else joints, **kwargs)
    write_h5(tmp_path, "valid", *make_clips(N_VALID, seed=2))
    return tmp_path


def _clips(**change):
    """Train clips with one array replaced by change['frames'](f) or change['joints'](j)."""
    f, j = make_clips(N_TRAIN, seed=1)
    f = change["frames"](f) if "frames" in change else f
    return f, (change["joints"](j) if "joints" in change else j)


def _with_nan(j):
    j = j.copy()
    j[3, 2, 5, 1] = np.nan
    return j


def _clip_4_in_mm(j):
    j = j.copy()
    j[4] *= 1000
    return j


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _garble(path: Path, start: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[start : start + 64] = np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


class _RunsCodeWhenUnpickled:
    """Unpickling this creates the file `sentinel`: proof that nothing was unpickled if it is absent."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


def _case_missing_labels(d):
    _npy(d)
    (d / "joint_3d_clips_train.npy").unlink()


def _case_unrelated(d):
    (d / "notes.txt").write_text("hello")
    (d / "photo.png").write_bytes(b"\x89PNG")


def _case_only_train(d):
    write_h5(d, "train", *make_clips(N_TRAIN))


def _case_pickle(d):
    _npy(d)
    with open(d / "videoframes_clips_train.npy", "wb") as f:
        pickle.dump(_RunsCodeWhenUnpickled(d / "UNPICKLED"), f)


def _case_object_array(d):
    _npy(d)
    np.save(d / "joint_3d_clips_train.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


def _case_garbled_npy_header(d):
    _npy(d)
    _garble(d / "joint_3d_clips_train.npy", start=10)


def _case_mixed_frame_sizes(d):
    write_npy(d, "train", *make_clips(N_TRAIN, size=8))
    write_npy(d, "valid", *make_clips(N_VALID, size=6))


def _case_bad_meta(d):
    _h5(d)
    with h5py.File(d / "train.h5", "a") as f:
        del f["subject"]
        f.create_dataset("subject", data=["S1"] * 2, dtype=h5py.string_dtype())


BAD_INPUTS = {
    # name: (make the folder in d, [--units], substrings the message must contain)
    "missing folder": (lambda d: d.rmdir(), "m", ["no such folder"]),
    "empty folder": (lambda d: None, "m", ["empty folder", "train.h5", "videoframes_clips_train.npy"]),
    "unrelated folder": (_case_unrelated, "m", ["no 'train' split", "found: notes.txt, photo.png"]),
    "missing labels file": (_case_missing_labels, "m", ["joint_3d_clips_train.npy: file not found"]),
    "missing valid split": (_case_only_train, "m", ["no 'valid' split", "valid.h5"]),
    "clip counts differ (npy)": (
        lambda d: _npy(d, joints=make_clips(6)[1]), "m",
        ["different clip counts", "videoframes_clips_train.npy has 7 clips",
         "joint_3d_clips_train.npy has 6"],
    ),
    "clip counts differ (h5)": (
        lambda d: _h5(d, joints=make_clips(6)[1]), "m", ["train.h5", "'frames' has 7 clips, 'joints' has 6"],
    ),
    "frames wrong rank": (
        lambda d: _npy(d, frames=_clips(frames=lambda f: f[..., 0])[0]), "m",
        ["videoframes_clips_train.npy: frames have rank 4, not 5: shape (7, 8, 8, 8)"],
    ),
    "7 frames per clip": (
        lambda d: _npy(d, frames=_clips(frames=lambda f: f[:, :7])[0]), "m",
        ["clips have 7 frames, not 8", "expected (clips, 8, H, W, 3)"],
    ),
    "labels 7 frames per clip (h5)": (
        lambda d: _h5(d, joints=_clips(joints=lambda j: j[:, :7])[1]), "m",
        ["train.h5: labels have 7 frames per clip, not 8"],
    ),
    "16 joints": (
        lambda d: _npy(d, joints=_clips(joints=lambda j: j[:, :, :16])[1]), "m",
        ["joint_3d_clips_train.npy: labels have 16 joints, not 17: shape (7, 8, 16, 3)"],
    ),
    "2 coordinates": (
        lambda d: _npy(d, joints=_clips(joints=lambda j: j[..., :2])[1]), "m",
        ["labels have 2 coordinates per joint, not 3"],
    ),
    "labels wrong rank": (
        lambda d: _npy(d, joints=_clips(joints=lambda j: j[:, 0])[1]), "m",
        ["labels have rank 3, not 4", "expected (clips, 8, 17, 3)"],
    ),
    "float frames": (
        lambda d: _h5(d, frames=_clips(frames=lambda f: f.astype(np.float32))[0]), "m",
        ["train.h5: frames have dtype float32, expected uint8"],
    ),
    "string labels": (
        lambda d: _npy(d, joints=_clips(joints=lambda j: j.astype("U8"))[1]), "m",
        ["labels have dtype <U8, expected floating-point"],
    ),
    "NaN label": (
        lambda d: _npy(d, joints=_clips(joints=_with_nan)[1]), "m",
        ["joint_3d_clips_train.npy: labels are not finite", "in 1 clip(s): 3"],
    ),
    "all-zero labels": (
        lambda d: _npy(d, joints=np.zeros((N_TRAIN, 8, 17, 3), np.float32)), "m", ["every label is 0"],
    ),
    "zero clips": (
        lambda d: _npy(d, np.zeros((0, 8, 8, 8, 3), np.uint8), np.zeros((0, 8, 17, 3), np.float32)), "m",
        ["videoframes_clips_train.npy holds no clips"],
    ),
    "millimetres under --units m": (
        lambda d: _npy(d, joints=_clips(joints=lambda j: j * 1000)[1]), "m",
        ["joint_3d_clips_train.npy: labels look like millimetres", "--units mm"],
    ),
    "metres under --units mm": (lambda d: _npy(d), "mm", ["labels look like metres, not millimetres"]),
    "one clip of absurd labels": (
        lambda d: _npy(d, joints=_clips(joints=_clip_4_in_mm)[1]), "m",
        ["labels of 1 clip(s) reach 899.3 m from the origin", "(damaged labels?): clip(s) 4"],
    ),
    "truncated npy": (
        lambda d: (_npy(d), _truncate(d / "videoframes_clips_train.npy", 0.9)), "m",
        ["videoframes_clips_train.npy: truncated", "(7, 8, 8, 8, 3) uint8"],
    ),
    "corrupt npy": (
        lambda d: (_npy(d), _garble(d / "joint_3d_clips_train.npy")), "m",
        ["joint_3d_clips_train.npy: not a .npy file"],
    ),
    "corrupt npy header": (_case_garbled_npy_header, "m", ["joint_3d_clips_train.npy: corrupt .npy header"]),
    "empty npy file": (
        lambda d: (_npy(d), (d / "joint_3d_clips_train.npy").write_bytes(b"")), "m", ["empty file (0 bytes)"],
    ),
    "object array": (
        _case_object_array, "m",
        ["joint_3d_clips_train.npy: holds Python objects", "refused (never unpickled)"],
    ),
    "pickle named .npy": (_case_pickle, "m", ["videoframes_clips_train.npy: is a Python pickle", "refused"]),
    "truncated h5": (lambda d: (_h5(d), _truncate(d / "train.h5", 0.5)), "m", ["train.h5: truncated"]),
    "corrupt h5": (lambda d: (_h5(d), _garble(d / "train.h5")), "m", ["train.h5: not an HDF5 file"]),
    "h5 without joints": (
        lambda d: (_h5(d), h5py.File(d / "train.h5", "a").__delitem__("joints")), "m",
        ["train.h5: no 'joints' dataset (found: action, camera, frames, mirrored, subject)"],
    ),
    "h5 declares mm": (
        lambda d: _h5(d, attrs={"units": "mm"}), "m",
        ["declares units 'mm' but --units m was given; pass --units mm"],
    ),
    "h5 declares unknown units": (
        lambda d: _h5(d, attrs={"units": "inches"}), "m", ["declares units 'inches'; expected one of m, mm"],
    ),
    "h5 other joint order": (
        lambda d: _h5(d, attrs={"joint_names": list(JOINT_NAMES[::-1])}), "m",
        ["joint_names has 'RWrist' as joint 0, expected 'Pelvis'"],
    ),
    "h5 metadata length": (
        _case_bad_meta, "m", ["train.h5: 'subject' has shape (2,), expected one entry per clip (7)"],
    ),
    "train and valid frame sizes differ": (
        _case_mixed_frame_sizes, "m", ["train frames are 8x8 pixels but valid frames are 6x6"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_gets_one_plain_message(tmp_path, case, capsys):
    make, units, expected = BAD_INPUTS[case]
    d = tmp_path / "data"
    d.mkdir()
    make(d)
    with pytest.raises(DataError) as info:
        validate_dir(d, units=units)
    for text in expected:
        assert text in str(info.value)
    assert not (d / "UNPICKLED").exists(), "a pickle was unpickled"

    assert cli.main(["check-data", str(d), "--units", units]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {d}") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err and captured.out == ""
    for text in expected:
        assert text in captured.err


def test_check_data_as_a_real_command(npy_dir, tmp_path):
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "pose_utils", *a], capture_output=True, text=True, cwd=ROOT_DIR
    )
    ok = run("check-data", str(npy_dir))
    assert ok.returncode == 0 and "train: 7 clips" in ok.stdout and "[npy]" in ok.stdout
    bad = run("check-data", str(tmp_path / "nowhere"))
    assert bad.returncode == 2 and bad.stderr == f"error: {tmp_path / 'nowhere'}: no such folder\n"
    debug = run("--debug", "check-data", str(tmp_path / "nowhere"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "DataError" in debug.stderr


# ----------------------------------------------------------------------------- epoch order


def test_epoch_order_is_a_reproducible_permutation_that_changes_per_epoch():
    a = epoch_order(100, seed=3, epoch=0)
    assert sorted(a.tolist()) == list(range(100))
    np.testing.assert_array_equal(a, epoch_order(100, seed=3, epoch=0))
    assert not np.array_equal(a, epoch_order(100, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_order(100, seed=4, epoch=0))
    assert len(epoch_order(5, seed=-1, epoch=0)) == 5  # negative seeds from the command line work
    mask = flip_mask(1000, seed=3, epoch=0)
    assert 400 < mask.sum() < 600 and np.array_equal(mask, flip_mask(1000, seed=3, epoch=0))


# ----------------------------------------------------------------------------- tf_dataset


def collect(ds):
    """All batches of a dataset as two lists of NumPy arrays (frames, joints)."""
    batches = [(f.numpy(), j.numpy()) for f, j in ds]
    return [f for f, _ in batches], [j for _, j in batches]


def test_tf_dataset_streams_every_clip_once_in_the_epoch_order(npy_dir, h5_dir, clips):
    frames, joints = clips
    streams = {}
    for d in (npy_dir, h5_dir):
        with open_split(d, "train") as store:
            streams[store.layout] = collect(tf_dataset(store, batch_size=3, seed=5, epoch=2))
    got_frames, got_joints = streams["npy"]
    assert [len(b) for b in got_frames] == [3, 3, 1]
    order = epoch_order(N_TRAIN, seed=5, epoch=2)
    np.testing.assert_array_equal(np.concatenate(got_joints), joints[order])
    batch = np.concatenate(got_frames)
    assert batch.dtype == np.float32 and batch.min() >= 0 and batch.max() <= 1
    np.testing.assert_array_equal(batch, frames[order].astype(np.float32) / np.float32(255))
    for npy_part, h5_part in zip(streams["npy"], streams["h5"], strict=True):  # same clips, same order
        np.testing.assert_array_equal(np.concatenate(npy_part), np.concatenate(h5_part))


def test_tf_dataset_order_depends_only_on_seed_and_epoch(npy_dir):
    with open_split(npy_dir, "train") as store:
        first = lambda **kw: np.concatenate(collect(tf_dataset(store, 2, **kw))[1])  # noqa: E731
        np.testing.assert_array_equal(first(seed=1, epoch=4), first(seed=1, epoch=4))
        assert not np.array_equal(first(seed=1, epoch=4), first(seed=1, epoch=5))
        np.testing.assert_array_equal(first(shuffle=False), store.joints)


def test_tf_dataset_subset_drop_remainder_and_static_shapes(h5_dir):
    with open_split(h5_dir, "train") as store:
        ds = tf_dataset(store, batch_size=2, indices=np.array([6, 0, 2, 4, 5]), drop_remainder=True, seed=1)
        assert ds.element_spec[0].shape.as_list() == [2, 8, SIZE, SIZE, 3]
        assert ds.element_spec[1].shape.as_list() == [2, 8, 17, 3]
        _, joints = collect(ds)
        which = lambda clip: int(np.nonzero((store.joints == clip).all(axis=(1, 2, 3)))[0][0])  # noqa: E731
        seen = [which(clip) for clip in np.concatenate(joints)]
        assert len(seen) == 4 and len(set(seen)) == 4 and set(seen) <= {6, 0, 2, 4, 5}
        assert tf_dataset(store, 2, prefetch=None).element_spec[0].shape.as_list() == [None, 8, SIZE, SIZE, 3]
        with pytest.raises(ValueError, match="repeats"):
            tf_dataset(store, 2, indices=[1, 1])
        with pytest.raises(ValueError, match=r"in \[0, 7\)"):
            tf_dataset(store, 2, indices=[7])
        with pytest.raises(ConfigError, match="batch_size"):
            tf_dataset(store, 0)


@pytest.mark.parametrize("layout", ["npy", "h5"])
def test_flip_augment_mirrors_the_clips_of_the_flip_mask(tmp_path, layout, clips):
    frames, joints = clips
    with open_split(write_both_splits(tmp_path, layout), "train") as store:
        got_frames, got_joints = collect(tf_dataset(store, 4, seed=9, epoch=1, flip_augment=True))
    order, mask = epoch_order(N_TRAIN, 9, 1), flip_mask(N_TRAIN, 9, 1)
    assert 0 < mask.sum() < N_TRAIN  # this seed flips some clips and keeps others
    want_frames = np.where(mask[:, None, None, None, None], frames[:, :, :, ::-1, :], frames)[order]
    want_joints = np.where(mask[:, None, None, None], flip_left_right(joints), joints)[order]
    want_frames = want_frames.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(np.concatenate(got_frames), want_frames)
    np.testing.assert_array_equal(np.concatenate(got_joints), want_joints)


def test_roll_turns_image_and_labels_together_exactly():
    """A bright dot drawn where a 3-D point projects lands, after the roll, where the turned point goes."""
    from pose_utils import camera
    from pose_utils.data import roll_clips

    size, f = 64, 70.0
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1]])
    rng = np.random.default_rng(4)
    xy, z = rng.uniform(-0.5, 0.5, (3, 8, 17, 2)), rng.uniform(3.5, 4.5, (3, 8, 17, 1))
    points = np.concatenate([xy, z], -1)
    joint = 13
    uv = camera.project(points[:, :, joint], K)
    frames = np.zeros((3, 8, size, size, 1), np.float32)
    for b, t in np.ndindex(3, 8):
        u, v = np.round(uv[b, t]).astype(int)
        frames[b, t, v - 1:v + 2, u - 1:u + 2] = 1.0
    angles = np.deg2rad([25.0, -40.0, 0.0]).astype(np.float32)
    turned_frames, turned = (a.numpy() for a in roll_clips(frames, points.astype(np.float32), angles))

    def turn(pixels):  # rotate pixel positions about the principal point by each clip's angle
        c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
        d = pixels - (size - 1) / 2
        return np.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]], -1) + (size - 1) / 2

    np.testing.assert_allclose(camera.project(turned[:, :, joint], K), turn(uv), atol=1e-3)  # the labels
    want = turn(np.round(uv))  # where the dot's centre must go
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    mass = turned_frames[..., 0].sum(axis=(2, 3))
    dot = turned_frames[..., 0]
    got = np.stack([(dot * cols).sum(axis=(2, 3)), (dot * rows).sum(axis=(2, 3))], -1) / mass[..., None]
    np.testing.assert_allclose(got, want, atol=0.35)  # bilinear resampling of a 3x3 dot
    np.testing.assert_allclose(turned[2], points[2], atol=1e-6)  # angle 0: unchanged
    np.testing.assert_allclose(turned[..., 2], points[..., 2], atol=1e-6)  # depth is kept
    np.testing.assert_allclose(np.linalg.norm(turned, axis=-1), np.linalg.norm(points, axis=-1), rtol=1e-5)


def test_roll_augment_turns_the_clips_of_roll_angles(npy_dir):
    from pose_utils.data import roll_angles

    angles = roll_angles(N_TRAIN, 9, 1, 30.0)
    assert np.all(np.abs(angles) <= np.deg2rad(30.0)) and np.ptp(angles) > 0
    np.testing.assert_array_equal(angles, roll_angles(N_TRAIN, 9, 1, 30.0))  # a pure function of its inputs
    assert not np.array_equal(angles, roll_angles(N_TRAIN, 9, 2, 30.0))
    assert not roll_angles(N_TRAIN, 9, 1, 0.0).any()
    with open_split(npy_dir, "train") as store:
        _, got = collect(tf_dataset(store, 4, seed=9, epoch=1, roll_augment=30.0))
        want = store.joints[epoch_order(N_TRAIN, 9, 1)]
    a = angles[epoch_order(N_TRAIN, 9, 1)][:, None, None]
    got = np.concatenate(got)
    np.testing.assert_allclose(got[..., 0], np.cos(a) * want[..., 0] - np.sin(a) * want[..., 1], atol=1e-5)
    np.testing.assert_allclose(got[..., 1], np.sin(a) * want[..., 0] + np.cos(a) * want[..., 1], atol=1e-5)


def test_target_transform_is_applied_in_the_graph(npy_dir):
    with open_split(npy_dir, "train") as store:
        transform = fit_transform("minmax", store.joints)
        _, targets = collect(tf_dataset(store, 4, shuffle=False, target_transform=transform))
        np.testing.assert_allclose(np.concatenate(targets), transform.forward(store.joints), atol=1e-6)
        assert 0.1 - 1e-6 <= np.concatenate(targets).min() and np.concatenate(targets).max() <= 0.9 + 1e-6


# ----------------------------------------------------------------------------- the generator's data


def test_generated_tiny_dataset_agrees_across_layouts(tiny_data_dir, tmp_path):
    """make-data writes both layouts; ours must read the same clips from each, in the same order."""
    npy_only = tmp_path / "npy_only"
    npy_only.mkdir()
    for path in tiny_data_dir.glob("*.npy"):
        (npy_only / path.name).symlink_to(path)
    assert validate_dir(tiny_data_dir).startswith(f"{tiny_data_dir}: OK")
    with open_split(tiny_data_dir, "train") as h5, open_split(npy_only, "train") as npy:
        assert (h5.layout, npy.layout) == ("h5", "npy") and len(h5) == len(npy) == 32
        assert h5.frame_size == npy.frame_size == 64
        np.testing.assert_array_equal(h5.joints, npy.joints)
        np.testing.assert_array_equal(h5.read_frames(range(len(h5))), npy.read_frames(range(len(npy))))
        assert np.abs(h5.joints[:, :, 0]).max() == 0 and not h5.warnings  # root-relative metres
        assert {"subject", "action", "camera", "mirrored", "root", "intrinsics"} <= set(h5.meta)
        # flip_augment is an exact mirror only when the principal point is the frame centre
        np.testing.assert_allclose(h5.meta["intrinsics"][:, :2, 2], (64 - 1) / 2)
        a = collect(tf_dataset(h5, 5, seed=2, epoch=3, flip_augment=True))
        b = collect(tf_dataset(npy, 5, seed=2, epoch=3, flip_augment=True))
        for x, y in zip(a[0] + a[1], b[0] + b[1], strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("layout", ["npy", "h5"])
def test_cached_frames_stream_exactly_what_the_file_gives(layout, tmp_path):
    folder = write_both_splits(tmp_path / layout, layout)
    with open_split(folder, "train") as store:
        from_file = collect(tf_dataset(store, 4, seed=2, epoch=1, flip_augment=True))
        store.cache_frames(progress=False)
        from_memory = collect(tf_dataset(store, 4, seed=2, epoch=1, flip_augment=True))
        picked = store.read_frames([3, 1, 3])
        picked[:] = 0  # the caller's copy: the cache must not change
        np.testing.assert_array_equal(store.read_frames([1, 3]), store.frames[[1, 3]])
    for a, b in zip(from_file[0] + from_file[1], from_memory[0] + from_memory[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_closing_a_store_frees_its_frame_cache_even_if_the_store_lives_on(npy_dir):
    import gc
    import weakref

    # tf.data keeps a store alive after training; the benchmark then trains the next model in the same
    # process, and a cache that outlived its run made the second one refuse to cache (measured: `full`).
    store = open_split(npy_dir, "train")
    store.cache_frames(progress=False)
    cache = weakref.ref(store._cache)
    store.close()
    gc.collect()
    assert cache() is None


def test_caching_more_frames_than_memory_allows_is_a_plain_error(npy_dir, monkeypatch):
    import pose_utils.data.store as store_module

    monkeypatch.setattr(store_module, "_available_memory", lambda: 1000)  # as if the machine had 1 kB free
    with open_split(npy_dir, "train") as store, pytest.raises(ConfigError) as e:
        store.cache_frames(progress=False)
    assert "videoframes_clips_train.npy" in str(e.value) and "--cache-frames" in str(e.value)


def test_available_memory_is_read_from_the_system():
    from pose_utils.data.store import _available_memory

    available = _available_memory()
    assert 10 * 1024**2 < available < 2**50  # bytes the system can give without swapping
