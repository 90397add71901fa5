"""The notebooks' figures: they draw what they are given, in the report's order, and say no to bad input."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from pose_utils import plots
from pose_utils.errors import PoseUtilsError
from pose_utils.skeleton import BONES, JOINT_NAMES

# A standing pose in camera coordinates (x right, y down, z forward), metres, pelvis at the origin.
STAND = np.array([
    [0, 0, 0], [-.12, 0, 0], [-.12, .45, 0], [-.12, .88, 0], [.12, 0, 0], [.12, .45, 0], [.12, .88, 0],
    [0, -.23, 0], [0, -.48, 0], [0, -.58, -.05], [0, -.68, 0], [.17, -.45, 0], [.45, -.45, 0], [.70, -.45, 0],
    [-.17, -.45, 0], [-.45, -.45, 0], [-.70, -.45, 0],
])
HISTORY = {"train_loss": [0.1, 0.05, 0.03], "val_loss": [0.12, 0.07, 0.06],
           "train_mpjpe": [200.0, 150.0, 120.0], "val_mpjpe": [210.0, 170.0, 160.0]}


def _clips(n=3, t=8, seed=0):
    rng = np.random.default_rng(seed)
    y_true = STAND + rng.normal(0, 0.02, (n, t, 17, 3))
    y_true -= y_true[..., :1, :]
    return y_true, y_true + rng.normal(0, 0.03, y_true.shape)


def test_report_table_has_one_value_per_joint():
    assert len(plots.REPORT_PER_JOINT_MPJPE_MM) == len(JOINT_NAMES) == 17
    assert plots.REPORT_PER_JOINT_MPJPE_MM[0] == 17.38 and plots.REPORT_PER_JOINT_MPJPE_MM[-1] == 186.93


def test_history_figure_is_the_reports_figures_1_to_4():
    fig = plots.plot_history(HISTORY)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Figure 1: Training loss", "Figure 2: Validation loss", "Figure 3: Training MPJPE",
                      "Figure 4: Validation MPJPE"]
    for ax, key in zip(fig.axes, ("train_loss", "val_loss", "train_mpjpe", "val_mpjpe"), strict=True):
        (line,) = ax.get_lines()
        np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])  # epochs count from 1
        np.testing.assert_allclose(line.get_ydata(), HISTORY[key])
    assert "mm" in fig.axes[3].get_ylabel()


def test_history_figure_names_a_missing_series():
    fig = plots.plot_history({"train_loss": [1.0]})
    assert fig.axes[0].get_lines()
    assert not fig.axes[1].get_lines()
    assert "val_loss" in fig.axes[1].texts[0].get_text()
    with pytest.raises(PoseUtilsError, match="dict"):
        plots.plot_history([1, 2])


def test_per_joint_bars_take_a_dict_or_a_list_and_keep_joint_order():
    ours = {name: 10.0 * (j + 1) for j, name in enumerate(JOINT_NAMES)}
    fig = plots.plot_per_joint(ours, baseline_mm=np.full(17, 300.0))
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "1 Pelvis" and labels[-1] == "17 RWrist"
    widths = [p.get_width() for p in ax.patches]
    assert widths[:17] == [10.0 * (j + 1) for j in range(17)]  # ours first
    assert widths[17:34] == [300.0] * 17  # then the baseline
    assert widths[34:] == list(plots.REPORT_PER_JOINT_MPJPE_MM)  # then the report
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["this model", "mean-pose baseline", "report"]


def test_per_joint_rows_are_the_reports_table():
    rows = plots.per_joint_rows(np.arange(17.0))
    assert rows[0] == {"joint": 1, "name": "Pelvis", "mpjpe_mm": 0.0, "report_mm": 17.38}
    assert [r["joint"] for r in rows] == list(range(1, 18))
    with pytest.raises(PoseUtilsError, match="17 values"):
        plots.per_joint_rows(np.arange(16.0))
    with pytest.raises(PoseUtilsError, match="no value for joint"):
        plots.plot_per_joint({"Pelvis": 1.0})


def test_breakdown_draws_each_group_and_the_baseline():
    fig = plots.plot_breakdown({"walk": 100.0, "run": 120.0}, baseline_mm={"walk": 150.0, "run": 160.0})
    (ax,) = fig.axes
    assert sorted(p.get_width() for p in ax.patches) == [100.0, 120.0, 150.0, 160.0]
    fig = plots.plot_breakdown({"cam0": 90.0}, baseline_mm=200.0)
    assert fig.axes[0].get_lines()[0].get_xdata()[0] == 200.0
    with pytest.raises(PoseUtilsError, match="nothing to plot"):
        plots.plot_breakdown({})


def test_3d_skeleton_draws_every_bone_upright():
    fig = plots.plot_skeletons_3d(STAND[None])
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == len(BONES) == 16
    # the head (joint 10, y = -0.68 m, up) is drawn above the right ankle (joint 3, y = +0.88 m)
    heights = {}
    for line, (child, _) in zip(lines, BONES, strict=True):
        heights[child] = line.get_data_3d()[2][1]
    assert heights[10] > heights[3]
    with pytest.raises(PoseUtilsError, match="shape"):
        plots.plot_skeletons_3d(np.zeros((2, 16, 3)))


def test_compare_skeletons_has_a_row_per_clip_and_reports_the_error():
    y_true, _ = _clips()
    y_pred = y_true + np.array([0.01, 0.0, 0.0])  # 10 mm off everywhere
    frames = np.zeros((3, 8, 32, 32, 3), np.uint8)
    fig = plots.compare_skeletons_3d(y_true, y_pred, frames=frames, clips=[0, 2], frame=1)
    assert len(fig.axes) == 2 * 4
    assert "MPJPE 10 mm" in fig.axes[3].get_title()
    with pytest.raises(PoseUtilsError, match="out of range"):
        plots.compare_skeletons_3d(y_true, y_pred, clips=[5])


def test_animation_is_written_as_a_gif_with_one_frame_per_clip_frame(tmp_path):
    y_true, y_pred = _clips(n=1, t=4)
    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    anim = plots.animate_clip(frames, y_true[0], y_pred[0])
    path = plots.save_animation(anim, tmp_path / "clip.gif", fps=4, dpi=40)
    with Image.open(path) as gif:
        assert gif.n_frames == 4
    assert not [p for p in tmp_path.iterdir() if p.name != "clip.gif"]  # no temporary left behind
    assert "<script" in anim.to_jshtml()
    with pytest.raises(PoseUtilsError, match="unsupported animation format"):
        plots.save_animation(anim, tmp_path / "clip.avi")
    with pytest.raises(PoseUtilsError, match="same number of frames"):
        plots.animate_clip(frames[:3], y_true[0])


def test_label_statistics_and_sweep_figures():
    y_true, _ = _clips()
    fig = plots.plot_label_statistics(y_true)
    assert len(fig.axes) == 2
    runs = [{"batch_size": 1, "history": HISTORY}, {"batch_size": 5, "history": {"val_mpjpe": [300, 200]}}]
    fig = plots.plot_sweep(runs, "batch_size")
    curves, finals = fig.axes
    assert len(curves.get_lines()) == 2
    assert list(finals.get_lines()[0].get_ydata()) == [160.0, 200.0]  # last epoch of each run
    low, high = finals.get_ylim()  # the axis spans the values, so a 40 mm difference is most of it
    assert 100 < low < 160 and 200 < high < 260 and (200 - 160) / (high - low) > 0.5
    assert [t.get_text() for t in finals.texts] == ["160.0", "200.0"]
    with pytest.raises(PoseUtilsError, match="no sweep result"):
        plots.plot_sweep(runs, "learning_rate")


def test_frame_figure_strip_and_png(tmp_path):
    y_true, y_pred = _clips(n=1, t=8)
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    joints_2d = np.full((8, 17, 2), 16.0)
    fig = plots.frame_figure(frames[0], joints_2d[0], y_true[0, 0], y_pred[0, 0], title="t")
    assert len(fig.axes) == 2
    png = plots.figure_png(fig, dpi=30)
    assert png.startswith(b"\x89PNG")
    strip = plots.clip_strip(frames, joints_2d, y_true[0], y_pred[0])
    assert len(strip.axes) == 16  # 8 frames over 8 3-D poses
    assert plots.save_figure(strip, tmp_path / "s.png").stat().st_size > 0
