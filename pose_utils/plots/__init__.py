"""Figures, built on `matplotlib.figure.Figure` (no pyplot global state) so they work headless. Inputs are
NumPy arrays; every function returns the Figure (or draws on the Axes it is given) and leaves saving to the
caller (`save_figure`). One module per kind of figure, every name re-exported here (`plots.contact_sheet`):

    poses    a skeleton over a frame or in space, coloured by side; true beside predicted skeletons
    clips    a contact sheet, one frame or a strip of a clip with its poses, a clip's animation
    results  training curves (the report's Figures 1-4), per-joint bars, MPJPE by group, sweeps, labels
    files    PNG bytes, a figure or an animation saved atomically
    picks    what notebooks 01 and 04 choose to draw: a split's contact sheet, the clips worth showing
    widgets  ipywidgets scrubbers over a clip and a split (notebooks 01 and 04)
"""

from pose_utils.plots.clips import animate_clip, clip_strip, contact_sheet, frame_figure
from pose_utils.plots.files import figure_png, save_animation, save_figure
from pose_utils.plots.poses import (
    CENTER_COLOR,
    LEFT_COLOR,
    PREDICTED_COLOR,
    RIGHT_COLOR,
    compare_skeletons_3d,
    draw_skeleton_2d,
    draw_skeleton_3d,
    plot_skeletons_3d,
)
from pose_utils.plots.results import (
    per_joint_rows,
    plot_breakdown,
    plot_history,
    plot_label_statistics,
    plot_per_joint,
    plot_sweep,
)
from pose_utils.report import REPORT_PER_JOINT_MPJPE_MM

__all__ = [
    "CENTER_COLOR", "LEFT_COLOR", "PREDICTED_COLOR", "REPORT_PER_JOINT_MPJPE_MM", "RIGHT_COLOR",
    "animate_clip", "clip_strip", "compare_skeletons_3d", "contact_sheet", "draw_skeleton_2d",
    "draw_skeleton_3d", "figure_png", "frame_figure", "per_joint_rows", "plot_breakdown", "plot_history",
    "plot_label_statistics", "plot_per_joint", "plot_skeletons_3d", "plot_sweep", "save_animation",
    "save_figure",
]
