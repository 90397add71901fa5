"""Poses drawn: a skeleton over a frame (2-D) or in space (3-D), coloured by side, and the figures of true
beside predicted skeletons. Built on `matplotlib.figure.Figure` (no pyplot global state), so they work
headless; every function returns the Figure or draws on the Axes it is given.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from pose_utils.errors import PoseUtilsError
from pose_utils.skeleton import BONES, LEFT, NUM_JOINTS, RIGHT

LEFT_COLOR = "#1f77b4"  # blue: the person's left side


RIGHT_COLOR = "#d62728"  # red: the person's right side


CENTER_COLOR = "#2ca02c"  # green: pelvis, spine, head


def _side_color(joint: int, left: str, right: str, center: str) -> str:
    return left if joint in LEFT else right if joint in RIGHT else center


def draw_skeleton_2d(ax, joints_2d, *, left_color: str = LEFT_COLOR, right_color: str = RIGHT_COLOR,
                     center_color: str = CENTER_COLOR, linewidth: float = 1.5, markersize: float = 2.5,
                     alpha: float = 1.0) -> None:
    """Draw a 17-joint skeleton on `ax` in pixel coordinates.

    Inputs: joints_2d of shape (17, 2), pixels (u right, v down; use on an `imshow` axes, whose y axis
    already points down). Bones come from skeleton.BONES and take the colour of their child joint's
    side: left blue, right red, centre green by default.
    """
    joints_2d = np.asarray(joints_2d, dtype=np.float64)
    if joints_2d.shape != (NUM_JOINTS, 2):
        raise ValueError(f"joints_2d must have shape ({NUM_JOINTS}, 2), got {joints_2d.shape}")
    colors = [_side_color(j, left_color, right_color, center_color) for j in range(NUM_JOINTS)]
    segments = [joints_2d[[parent, child]] for child, parent in BONES]
    ax.add_collection(LineCollection(segments, colors=[colors[c] for c, _ in BONES], linewidths=linewidth,
                                     alpha=alpha, capstyle="round", zorder=2), autolim=False)
    ax.scatter(joints_2d[:, 0], joints_2d[:, 1], s=markersize**2, c=colors, alpha=alpha, zorder=3,
               linewidths=0)


PREDICTED_COLOR = "#9467bd"  # purple: a prediction drawn over the true pose (which keeps the side colours)


def draw_skeleton_3d(ax, pose, color: str | None = None, label: str | None = None, alpha: float = 1.0,
                     linestyle: str = "-"):
    """Draw one pose on a 3-D axes. pose: (17, 3) camera coordinates (x right, y down, z forward), any unit.

    Plotted as (x, z, -y) so the person stands upright and depth goes into the screen. Bones take the
    colour of their child joint's side (left blue, right red, centre green, as `draw_skeleton_2d`) unless
    `color` is given. Returns the list of Line3D artists.
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (NUM_JOINTS, 3):
        raise PoseUtilsError(f"pose must have shape ({NUM_JOINTS}, 3), got {pose.shape}")
    lines = []
    for i, (child, parent) in enumerate(BONES):
        seg = pose[[parent, child]]
        side = _side_color(child, LEFT_COLOR, RIGHT_COLOR, CENTER_COLOR)
        (line,) = ax.plot(seg[:, 0], seg[:, 2], -seg[:, 1], color=color or side, alpha=alpha, lw=2,
                          ls=linestyle, label=label if i == 0 else None)
        lines.append(line)
    return lines


def set_3d_limits(ax, poses, pad: float = 0.1) -> None:
    pts = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if pts.size == 0:
        return
    centre = (pts.max(0) + pts.min(0)) / 2
    radius = max(float((pts.max(0) - pts.min(0)).max()) / 2, 1e-6) * (1 + pad)
    ax.set_xlim(centre[0] - radius, centre[0] + radius)
    ax.set_ylim(centre[2] - radius, centre[2] + radius)
    ax.set_zlim(-centre[1] - radius, -centre[1] + radius)
    ax.set_box_aspect((1, 1, 1))
    # Tick labels would crowd a small panel; the grid is enough to read shape and depth.
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.set_xlabel("x", labelpad=-12)
    ax.set_ylabel("depth z", labelpad=-12)
    ax.set_zlabel("up", labelpad=-12)
    ax.view_init(elev=10, azim=-70)


def plot_skeletons_3d(poses, titles=None, ncols: int = 4, size: float = 3.0):
    """A grid of 3-D skeletons, one pose per panel. poses: (k, 17, 3) camera coordinates. Returns a Figure."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim == 2:
        poses = poses[None]
    if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or len(poses) == 0:
        raise PoseUtilsError(f"poses must have shape (k, {NUM_JOINTS}, 3) with k >= 1, got {poses.shape}")
    ncols = max(1, min(ncols, len(poses)))
    nrows = -(-len(poses) // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    for i, pose in enumerate(poses):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
        draw_skeleton_3d(ax, pose)
        set_3d_limits(ax, poses)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    return fig


def compare_skeletons_3d(y_true, y_pred, frames=None, clips=None, frame: int = 0, titles=None,
                         mm_errors: bool = True):
    """True and predicted 3-D skeletons side by side for a few clips, one row per clip.

    y_true, y_pred: (N, 8, 17, 3) metres (camera coordinates, root-relative). frames: optional
    (N, 8, H, W, 3) uint8 to show the input frame in a first column. clips: indices into N (default the
    first min(N, 3)). Columns: [frame], true, predicted, both overlaid (true solid, predicted dashed purple).
    Each row's title gives that frame's MPJPE in mm. Returns a Figure.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 4 or y_true.shape[-2:] != (NUM_JOINTS, 3):
        raise PoseUtilsError(
            f"y_true and y_pred must both be (N, T, 17, 3), got {y_true.shape} and {y_pred.shape}"
        )
    n, t = y_true.shape[:2]
    clips = list(range(min(n, 3))) if clips is None else [int(c) for c in clips]
    for c in clips:
        if not 0 <= c < n:
            raise PoseUtilsError(f"clip index {c} is out of range [0, {n})")
    if not 0 <= frame < t:
        raise PoseUtilsError(f"frame index {frame} is out of range [0, {t})")
    ncols = 3 + (frames is not None)
    fig = Figure(figsize=(3.2 * ncols, 3.2 * len(clips)), layout="constrained")
    for row, c in enumerate(clips):
        true, pred = y_true[c, frame], y_pred[c, frame]
        err = float(np.linalg.norm(true - pred, axis=-1).mean()) * (1000.0 if mm_errors else 1.0)
        name = titles[row] if titles is not None else f"clip {c}, frame {frame}"
        col = 0
        if frames is not None:
            ax = fig.add_subplot(len(clips), ncols, row * ncols + 1)
            ax.imshow(np.asarray(frames[c, frame]))
            ax.set_axis_off()
            ax.set_title(name, fontsize=9)
            col = 1
        panels = (("true", [(true, None, "-")]), ("predicted", [(pred, None, "-")]),
                  (f"overlay, MPJPE {err:.0f} {'mm' if mm_errors else ''}".rstrip(),
                   [(true, None, "-"), (pred, PREDICTED_COLOR, "--")]))
        for k, (panel, drawn) in enumerate(panels):
            ax = fig.add_subplot(len(clips), ncols, row * ncols + col + k + 1, projection="3d")
            for pose, color, ls in drawn:
                draw_skeleton_3d(ax, pose, color=color, linestyle=ls)
            set_3d_limits(ax, np.stack([true, pred]))
            ax.set_title(panel if frames is not None or k else f"{name}: {panel}", fontsize=9)
    return fig
