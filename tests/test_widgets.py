"""The clip scrubber: sliders move through real clips of the tiny dataset; a static figure comes too."""

import numpy as np
import pytest

from pose_utils import camera, data
from pose_utils.errors import PoseUtilsError
from pose_utils.plots import widgets


@pytest.fixture(scope="module")
def store(tiny_data_dir):
    with data.open_split(tiny_data_dir, "valid") as s:
        yield s


def test_projected_joints_land_in_the_frame(store):
    uv = widgets.projected_joints(store, 2)
    assert uv.shape == (store.num_frames, 17, 2)
    size = store.frame_size
    assert np.all((uv > -0.5) & (uv < size - 0.5))
    # the pelvis (root) projects to where camera.project puts the stored root position
    root = np.asarray(store.meta["root"][2])
    np.testing.assert_allclose(uv[:, 0], camera.project(root, store.meta["intrinsics"][2]), atol=1e-9)


def test_browser_follows_its_sliders(store):
    predictions = store.joints + np.float32(0.02)
    box = widgets.clip_browser(store, predictions=predictions)
    caption, image = box.children[1], box.children[2]
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG")
    assert caption.value.startswith(widgets.clip_title(store, 0)) and "frame 1/8" in caption.value
    box.show(3, 6)  # frames are numbered 1 to 8, as in the caption
    assert caption.value.startswith(widgets.clip_title(store, 3)) and "frame 6/8" in caption.value
    assert bytes(image.value) != first
    err = np.linalg.norm(predictions[3, 5] - store.joints[3, 5], axis=-1).mean() * 1000
    assert f"MPJPE {err:.0f} mm" in caption.value


def test_frames_are_numbered_from_one_and_the_picture_is_sharp(store):
    box = widgets.clip_browser(store)
    frame_slider, play = box.children[0].children[1:]
    assert (frame_slider.min, frame_slider.max, frame_slider.value) == (1, store.num_frames, 1)
    assert (play.min, play.max) == (1, store.num_frames)
    image = box.children[2]
    png = bytes(image.value)
    width = int.from_bytes(png[16:20], "big")  # the IHDR chunk's width
    shown = int(image.layout.width.removesuffix("px"))
    assert shown == widgets.DISPLAY_WIDTH_PX and width >= widgets.PIXEL_DENSITY * shown - 1


def test_scrub_returns_the_static_figure(store):
    fig = widgets.scrub(store, indices=[4, 1])
    assert len(fig.axes) == 2 * store.num_frames  # frames over 3-D poses
    assert fig._suptitle.get_text() == widgets.clip_title(store, 4)


def test_bad_indices_and_predictions_are_plain_errors(store):
    with pytest.raises(PoseUtilsError, match="clip indices"):
        widgets.clip_browser(store, indices=[len(store)])
    with pytest.raises(PoseUtilsError, match="one pose sequence per clip"):
        widgets.clip_browser(store, predictions=np.zeros((1, 8, 17, 3)))


def test_course_layout_has_no_projection(tiny_data_dir, tmp_path):
    # the course's .npy files carry no root or intrinsics: frames are shown without a skeleton
    for name in ("videoframes_clips_valid.npy", "joint_3d_clips_valid.npy", "videoframes_clips_train.npy",
                 "joint_3d_clips_train.npy"):
        (tmp_path / name).symlink_to(tiny_data_dir / name)
    with data.open_split(tmp_path, "valid") as npy:
        assert npy.layout == "npy"
        assert widgets.projected_joints(npy, 0) is None
        assert widgets.clip_title(npy, 0) == "clip 0"
        fig = widgets.scrub(npy)
        assert len(fig.axes) == 2 * npy.num_frames
