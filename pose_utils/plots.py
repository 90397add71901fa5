"""Figures built on `matplotlib.figure.Figure` (no pyplot global state), so they work headless.

Inputs are NumPy arrays; every function returns the Figure (or draws on the Axes it is given) and
leaves saving to the caller: `fig.savefig(path)`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .skeleton import BONES, LEFT, NUM_JOINTS, RIGHT

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
