"""Clips drawn: a contact sheet of frames with their skeletons, one frame or a strip of a clip with the true
and predicted poses, and a clip's animation.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from pose_utils.errors import PoseUtilsError
from pose_utils.plots.poses import PREDICTED_COLOR, draw_skeleton_2d, draw_skeleton_3d, set_3d_limits
from pose_utils.skeleton import NUM_JOINTS


def contact_sheet(frames, joints_2d=None, *, titles=None, ncols: int = 8, panel_inches: float = 1.6,
                  suptitle: str | None = None, gap: float = 0.04, **skeleton_kwargs) -> Figure:
    """A grid of frames with their projected 2-D skeletons drawn over them.

    Inputs: frames (N, H, W, 3) uint8 (or floats in [0, 1]); joints_2d (N, 17, 2) pixels, or None for
    frames only; titles: N strings (or None) shown above the panels; gap: space between panels as a
    fraction of the frame width. The panels are tiled into one image on one Axes, which keeps large
    sheets fast to draw. Returns a Figure.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (N, H, W, 3), got {frames.shape}")
    n = len(frames)
    if n == 0:
        raise ValueError("contact_sheet needs at least one frame")
    if joints_2d is not None:
        joints_2d = np.asarray(joints_2d, dtype=np.float64)
        if joints_2d.shape != (n, NUM_JOINTS, 2):
            raise ValueError(f"joints_2d must have shape ({n}, {NUM_JOINTS}, 2), got {joints_2d.shape}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} frames")
    if frames.dtype != np.uint8:
        frames = np.clip(np.rint(frames.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    h, w = frames.shape[1:3]
    gx = max(1, round(gap * w))
    gy = gx + (round(0.16 * h) if titles is not None else 0)  # room for a title line above each row
    mosaic = np.full((nrows * (h + gy), ncols * (w + gx) - gx, 3), 255, np.uint8)
    origins = []
    for i in range(n):
        r, c = divmod(i, ncols)
        x0, y0 = c * (w + gx), r * (h + gy) + (gy - gx)
        mosaic[y0:y0 + h, x0:x0 + w] = frames[i]
        origins.append((x0, y0))
    inches = panel_inches / w  # figure inches per mosaic pixel
    header = 0.35 if suptitle else 0.0  # inches above the mosaic for the suptitle
    fig = Figure(figsize=(mosaic.shape[1] * inches, mosaic.shape[0] * inches + header))
    ax = fig.add_axes((0.0, 0.0, 1.0, mosaic.shape[0] * inches / (mosaic.shape[0] * inches + header)))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for i, (x0, y0) in enumerate(origins):
        if joints_2d is not None:
            # clip to the panel so a stray joint cannot draw over its neighbours
            clip = Rectangle((x0 - 0.5, y0 - 0.5), w, h, transform=ax.transData)
            before = len(ax.collections)
            draw_skeleton_2d(ax, joints_2d[i] + (x0, y0), **skeleton_kwargs)
            for artist in ax.collections[before:]:
                artist.set_clip_path(clip)
        if titles is not None and titles[i]:
            ax.text(x0, y0 - 1, titles[i], fontsize=6.5, va="bottom", ha="left", clip_on=False)
    ax.set_xlim(-0.5, mosaic.shape[1] - 0.5)
    ax.set_ylim(mosaic.shape[0] - 0.5, -0.5)
    if suptitle:
        fig.suptitle(suptitle, fontsize=8, y=0.995, va="top")
    return fig


def animate_clip(frames=None, y_true=None, y_pred=None, interval_ms: int = 250, title: str | None = None):
    """An animation over the frames of one clip: the input frame and the 3-D skeleton(s) frame by frame.

    frames: (T, H, W, 3) uint8 or None; y_true, y_pred: (T, 17, 3) camera coordinates or None (at least
    one of the three). The true pose is drawn in side colours, the prediction dashed purple. Returns a
    matplotlib FuncAnimation; save it with `save_animation` (GIF, no ffmpeg needed) or show
    `anim.to_jshtml()` in a notebook.
    """
    from matplotlib.animation import FuncAnimation

    arrays = {k: v for k, v in (("frames", frames), ("y_true", y_true), ("y_pred", y_pred)) if v is not None}
    if not arrays:
        raise PoseUtilsError("animate_clip needs frames, y_true or y_pred")
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise PoseUtilsError(f"frames and poses must have the same number of frames, got {lengths}")
    poses = [np.asarray(p, dtype=np.float64) for p in (y_true, y_pred) if p is not None]
    for p in poses:
        if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3):
            raise PoseUtilsError(f"poses must have shape (T, {NUM_JOINTS}, 3), got {p.shape}")
    t = next(iter(lengths.values()))
    ncols = (frames is not None) + bool(poses)
    fig = Figure(figsize=(3.4 * ncols, 3.4), layout="constrained")
    image_ax = pose_ax = None
    if frames is not None:
        image_ax = fig.add_subplot(1, ncols, 1)
        image_ax.set_axis_off()
        image = image_ax.imshow(np.asarray(frames[0]))
    if poses:
        pose_ax = fig.add_subplot(1, ncols, ncols, projection="3d")

    def draw(i):
        if image_ax is not None:
            image.set_data(np.asarray(frames[i]))
            image_ax.set_title(f"frame {i + 1}/{t}", fontsize=9)
        if pose_ax is not None:
            pose_ax.cla()
            if y_true is not None:
                draw_skeleton_3d(pose_ax, np.asarray(y_true[i]))
            if y_pred is not None:
                draw_skeleton_3d(pose_ax, np.asarray(y_pred[i]), color=PREDICTED_COLOR, linestyle="--")
            set_3d_limits(pose_ax, np.concatenate(poses))
            default = "true (colours) vs predicted (purple)" if len(poses) == 2 else "pose"
            pose_ax.set_title(title or default, fontsize=9)
        return []

    draw(0)
    return FuncAnimation(fig, draw, frames=t, interval=interval_ms, blit=False)


def frame_figure(frame=None, joints_2d=None, y_true=None, y_pred=None, title: str | None = None,
                 size: float = 3.2):
    """One frame of a clip: the image with its projected skeleton, and the 3-D pose(s) beside it.

    frame: (H, W, 3) uint8 or None; joints_2d: (17, 2) pixels or None; y_true, y_pred: (17, 3) camera
    coordinates or None (prediction dashed purple over the true pose). Used by the widgets' scrubbers.
    Returns a Figure.
    """
    poses = [p for p in (y_true, y_pred) if p is not None]
    if frame is None and not poses:
        raise PoseUtilsError("frame_figure needs a frame or a pose")
    ncols = (frame is not None) + bool(poses)
    fig = Figure(figsize=(size * ncols, size), layout="constrained")
    col = 1
    if frame is not None:
        ax = fig.add_subplot(1, ncols, col)
        ax.imshow(np.asarray(frame), interpolation="nearest")
        if joints_2d is not None:
            draw_skeleton_2d(ax, joints_2d)
            height, width = np.asarray(frame).shape[:2]
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
        ax.set_axis_off()
        col += 1
    if poses:
        ax = fig.add_subplot(1, ncols, col, projection="3d")
        if y_true is not None:
            draw_skeleton_3d(ax, y_true)
        if y_pred is not None:
            draw_skeleton_3d(ax, y_pred, color=PREDICTED_COLOR, linestyle="--")
        set_3d_limits(ax, np.stack([np.asarray(p, dtype=np.float64) for p in poses]))
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def clip_strip(frames=None, joints_2d=None, y_true=None, y_pred=None, title: str | None = None,
               size: float = 1.8):
    """Every frame of one clip in a row (image with projected skeleton), the 3-D poses in a row below.

    frames: (T, H, W, 3) uint8 or None; joints_2d: (T, 17, 2) pixels or None; y_true, y_pred:
    (T, 17, 3) camera coordinates or None. The static companion of the widgets' scrubbers. Returns a Figure.
    """
    poses = [np.asarray(p, dtype=np.float64) for p in (y_true, y_pred) if p is not None]
    if frames is None and not poses:
        raise PoseUtilsError("clip_strip needs frames or poses")
    t = len(frames) if frames is not None else len(poses[0])
    for p in poses:
        if p.shape != (t, NUM_JOINTS, 3):
            raise PoseUtilsError(f"poses must have shape ({t}, {NUM_JOINTS}, 3), got {p.shape}")
    nrows = (frames is not None) + bool(poses)
    fig = Figure(figsize=(size * t, size * nrows + (0.3 if title else 0)), layout="constrained")
    for i in range(t):
        row = 0
        if frames is not None:
            ax = fig.add_subplot(nrows, t, i + 1)
            ax.imshow(np.asarray(frames[i]), interpolation="nearest")
            if joints_2d is not None:
                draw_skeleton_2d(ax, joints_2d[i], linewidth=1.0, markersize=1.5)
                height, width = np.asarray(frames[i]).shape[:2]
                ax.set_xlim(-0.5, width - 0.5)
                ax.set_ylim(height - 0.5, -0.5)
            ax.set_axis_off()
            ax.set_title(f"frame {i + 1}", fontsize=7)
            row = 1
        if poses:
            ax = fig.add_subplot(nrows, t, row * t + i + 1, projection="3d")
            if y_true is not None:
                draw_skeleton_3d(ax, poses[0][i])
            if y_pred is not None:
                draw_skeleton_3d(ax, poses[-1][i], color=PREDICTED_COLOR, linestyle="--")
            set_3d_limits(ax, np.concatenate(poses))
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.set_zlabel("")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
