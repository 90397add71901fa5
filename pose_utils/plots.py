"""Figures built on `matplotlib.figure.Figure` (no pyplot global state), so they work headless.

Inputs are NumPy arrays; every function returns the Figure (or draws on the Axes it is given) and
leaves saving to the caller: `fig.savefig(path)`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .errors import PoseUtilsError
from .fileio import atomic_path
from .skeleton import BONES, JOINT_NAMES, LEFT, NUM_JOINTS, RIGHT

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


# ------------------------------------------------------------------ notebooks: figures of the report
# Added for the notebooks (03, 04, 05): training curves (report Figures 1–4), per-joint bars beside the
# report's table, 3-D skeletons true vs predicted, clip animations. Every function returns a matplotlib
# Figure (or Animation) built without pyplot's global state: a notebook displays it, a script saves it.

# The report's per-joint MPJPE table in millimetres, joints 1..17 in the Human3.6M order of
# skeleton.JOINT_NAMES (Pelvis first). Shown beside our numbers; never used in a computation.
REPORT_PER_JOINT_MPJPE_MM: tuple[float, ...] = (
    17.38, 40.59, 83.66, 167.78, 37.50, 85.08, 164.06, 53.92, 46.95,
    63.31, 60.47, 57.83, 106.52, 170.22, 71.60, 112.17, 186.93,
)

PREDICTED_COLOR = "#9467bd"  # purple: a prediction drawn over the true pose (which keeps the side colours)

_HISTORY_PANELS = (
    ("train_loss", "Figure 1: Training loss", "MSE loss (eq. 2)"),
    ("val_loss", "Figure 2: Validation loss", "MSE loss (eq. 2)"),
    ("train_mpjpe", "Figure 3: Training MPJPE", "MPJPE (eq. 3)"),
    ("val_mpjpe", "Figure 4: Validation MPJPE", "MPJPE (eq. 3)"),
)


def _history_series(history: dict, key: str) -> np.ndarray | None:
    values = history.get(key)
    if values is None:
        return None
    return np.asarray(values, dtype=np.float64).reshape(-1)


def plot_history(history: dict, mpjpe_unit: str = "mm", title: str | None = None,
                 baseline: dict | None = None):
    """The report's Figures 1–4 from a run's history (the dict saved as RUN/history.json).

    history: {"train_loss": [...], "val_loss": [...], "train_mpjpe": [...], "val_mpjpe": [...]} with one
    value per epoch (losses in the model's target space, eq. 2; MPJPE in `mpjpe_unit`, eq. 3). Missing or
    empty series leave their panel saying so. baseline: {history key: value} drawn as a dashed
    horizontal line on that panel, e.g. {"val_mpjpe": mean-pose baseline in mm}. Returns a 2×2 Figure,
    panels in the report's order.
    """
    if not isinstance(history, dict):
        raise PoseUtilsError(f"history must be a dict of per-epoch lists, got {type(history).__name__}")
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, (key, panel_title, ylabel) in zip(axes.flat, _HISTORY_PANELS, strict=True):
        values = _history_series(history, key)
        ax.set_title(panel_title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel + (f" ({mpjpe_unit})" if "mpjpe" in key else ""))
        if values is None or values.size == 0:
            ax.text(0.5, 0.5, f"no {key!r} in history", ha="center", va="center", transform=ax.transAxes)
            continue
        epochs = np.arange(1, values.size + 1)
        color = "tab:blue" if key.startswith("train") else "tab:orange"
        ax.plot(epochs, values, marker="o", markersize=3, color=color,
                label="training" if key.startswith("train") else "validation")
        if baseline and baseline.get(key) is not None:
            ax.axhline(float(baseline[key]), color="0.4", ls="--", lw=1, label="mean-pose baseline")
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return fig


def plot_per_joint(per_joint_mm, reference_mm=REPORT_PER_JOINT_MPJPE_MM, baseline_mm=None,
                   label: str = "this model", reference_label: str = "report", title: str | None = None):
    """Per-joint MPJPE as grouped horizontal bars, one group per joint (the report's table as a chart).

    per_joint_mm: 17 values in mm, or a {joint name: mm} dict (evaluate's `per_joint_mpjpe_mm`).
    reference_mm: the report's 17 values (None to leave them out); baseline_mm: e.g. the mean-pose
    baseline's per-joint errors. Returns a Figure.
    """
    series = [(label, _per_joint_values(per_joint_mm, "per_joint_mm"), "tab:blue")]
    if baseline_mm is not None:
        series.append(("mean-pose baseline", _per_joint_values(baseline_mm, "baseline_mm"), "0.6"))
    if reference_mm is not None:
        series.append((reference_label, _per_joint_values(reference_mm, "reference_mm"), "tab:orange"))
    fig = Figure(figsize=(7, 6.5), layout="constrained")
    ax = fig.subplots()
    rows = np.arange(NUM_JOINTS)
    height = 0.8 / len(series)
    for i, (name, values, color) in enumerate(series):
        ax.barh(rows + (i - (len(series) - 1) / 2) * height, values, height=height, color=color, label=name)
    ax.set_yticks(rows, [f"{j + 1} {n}" for j, n in enumerate(JOINT_NAMES)])
    ax.invert_yaxis()  # joint 1 (Pelvis) on top, as in the table
    ax.set_xlabel("MPJPE (mm)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncols=len(series), frameon=False)
    ax.set_title(title or "Per-joint MPJPE")
    return fig


def _per_joint_values(values, name: str) -> np.ndarray:
    if isinstance(values, dict):
        missing = [n for n in JOINT_NAMES if n not in values]
        if missing:
            raise PoseUtilsError(f"{name} has no value for joint(s) {', '.join(missing)}")
        values = [values[n] for n in JOINT_NAMES]
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape != (NUM_JOINTS,):
        raise PoseUtilsError(f"{name} must hold {NUM_JOINTS} values (one per joint), got {arr.size}")
    return arr


def per_joint_rows(per_joint_mm, reference_mm=REPORT_PER_JOINT_MPJPE_MM, baseline_mm=None) -> list[dict]:
    """The report's table as rows: {"joint": 1..17, "name", "mpjpe_mm", "report_mm"[, "baseline_mm"]}."""
    ours = _per_joint_values(per_joint_mm, "per_joint_mm")
    ref = _per_joint_values(reference_mm, "reference_mm") if reference_mm is not None else None
    base = _per_joint_values(baseline_mm, "baseline_mm") if baseline_mm is not None else None
    rows = []
    for j, name in enumerate(JOINT_NAMES):
        row = {"joint": j + 1, "name": name, "mpjpe_mm": float(ours[j])}
        if base is not None:
            row["baseline_mm"] = float(base[j])
        if ref is not None:
            row["report_mm"] = float(ref[j])
        rows.append(row)
    return rows


def plot_breakdown(values_mm: dict, baseline_mm: float | dict | None = None, title: str = "MPJPE by group",
                   xlabel: str = "MPJPE (mm)"):
    """Horizontal bars of one error per group (per action, per camera, …), sorted as given.

    values_mm: {group: mm}; baseline_mm: one number drawn as a dashed line (e.g. the model's overall
    MPJPE or the mean-pose baseline) or a {group: mm} dict drawn as grey bars behind. Returns a Figure.
    """
    if not isinstance(values_mm, dict) or not values_mm:
        raise PoseUtilsError(f"{title}: nothing to plot (expected a non-empty {{group: mm}} dict)")
    names = [str(k) for k in values_mm]
    values = np.asarray([float(v) for v in values_mm.values()])
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.5), layout="constrained")
    ax = fig.subplots()
    rows = np.arange(len(names))
    if isinstance(baseline_mm, dict):
        base = [float(baseline_mm.get(k, np.nan)) for k in values_mm]
        ax.barh(rows, base, color="0.85", label="baseline", height=0.8)
        ax.barh(rows, values, color="tab:blue", label="model", height=0.5)
        ax.legend(loc="lower right")
    else:
        ax.barh(rows, values, color="tab:blue")
        if baseline_mm is not None:
            ax.axvline(float(baseline_mm), color="k", ls="--", lw=1)
    ax.set_yticks(rows, names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return fig


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


def _set_3d_limits(ax, poses, pad: float = 0.1) -> None:
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
        _set_3d_limits(ax, poses)
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
            _set_3d_limits(ax, np.stack([true, pred]))
            ax.set_title(panel if frames is not None or k else f"{name}: {panel}", fontsize=9)
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
            _set_3d_limits(pose_ax, np.concatenate(poses))
            default = "true (colours) vs predicted (purple)" if len(poses) == 2 else "pose"
            pose_ax.set_title(title or default, fontsize=9)
        return []

    draw(0)
    return FuncAnimation(fig, draw, frames=t, interval=interval_ms, blit=False)


def save_animation(anim, path, fps: int = 4, dpi: int = 100):
    """Write an animation to `path` atomically: ".gif" with Pillow (always available), ".html" as
    JavaScript frames, ".mp4" with ffmpeg (if installed). Returns the Path written."""
    from matplotlib import animation

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        writer = animation.PillowWriter(fps=fps)
    elif suffix == ".html":
        writer = animation.HTMLWriter(fps=fps, embed_frames=True)
    elif suffix == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            raise PoseUtilsError(f"{path}: writing .mp4 needs ffmpeg, which is not installed; use .gif")
        writer = animation.FFMpegWriter(fps=fps)
    else:
        raise PoseUtilsError(
            f"{path}: unsupported animation format {suffix or '(none)'}; use .gif, .html or .mp4"
        )
    with atomic_path(path) as tmp:
        anim.save(str(tmp), writer=writer, dpi=dpi)
    return path


def plot_label_statistics(joints, title: str | None = None):
    """What the labels look like, for notebook 01 (and for choosing a target transform).

    joints: (N, T, 17, 3) metres, root-relative camera coordinates. Left: each joint's distance from the
    pelvis (box per joint, mm). Right: histograms of the x, y and z coordinates over all joints (mm).
    Returns a Figure.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim < 2 or joints.shape[-2:] != (NUM_JOINTS, 3) or joints.size == 0:
        raise PoseUtilsError(f"joints must have shape (..., {NUM_JOINTS}, 3), got {joints.shape}")
    mm = joints.reshape(-1, NUM_JOINTS, 3) * 1000.0
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    reach = np.linalg.norm(mm - mm[:, :1], axis=-1)
    ax1.boxplot([reach[:, j] for j in range(NUM_JOINTS)], showfliers=False)
    ax1.set_xticks(np.arange(1, NUM_JOINTS + 1), [f"{j + 1} {n}" for j, n in enumerate(JOINT_NAMES)],
                   rotation=70, fontsize=8)
    ax1.set_ylabel("distance from the pelvis (mm)")
    ax1.set_title("Joint distance from the root")
    for i, (axis, color) in enumerate(zip("xyz", ("tab:red", "tab:green", "tab:blue"), strict=True)):
        ax2.hist(mm[..., i].ravel(), bins=40, alpha=0.5, color=color, label=axis)
    ax2.set_xlabel("coordinate (mm, camera axes, pelvis at 0)")
    ax2.set_ylabel("count")
    ax2.legend()
    ax2.set_title("Label coordinates")
    if title:
        fig.suptitle(title)
    return fig


_SERIES_LABELS = {"train_loss": "training loss (eq. 2)", "val_loss": "validation loss (eq. 2)",
                  "train_mpjpe": "training MPJPE (mm)", "val_mpjpe": "validation MPJPE (mm)"}


def plot_sweep(results: list[dict], factor: str, metric: str = "val_mpjpe", title: str | None = None):
    """Curves of one metric per epoch for each run of a sweep, plus its final value per setting.

    results: [{"<factor>": value, "history": {metric: [...per epoch]}, ...}] (notebooks.collect_sweep).
    Returns a Figure with (left) the per-epoch curves and (right) the last epoch's value per setting, as
    points on an axis that spans the values (not from 0, which would flatten differences of 10-20 mm
    between runs near 300 mm), each labelled with its value.
    """
    runs = [r for r in results if factor in r and r.get("history", {}).get(metric)]
    if not runs:
        raise PoseUtilsError(f"no sweep result has both {factor!r} and a {metric!r} history")
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    labels, finals = [], []
    for r in runs:
        values = np.asarray(r["history"][metric], dtype=np.float64)
        label = f"{factor.replace('_', ' ')} {r[factor]:g}" if isinstance(r[factor], float) else \
            f"{factor.replace('_', ' ')} {r[factor]}"
        ax1.plot(np.arange(1, values.size + 1), values, marker="o", markersize=3, label=label)
        labels.append(f"{r[factor]:g}" if isinstance(r[factor], float) else str(r[factor]))
        finals.append(values[-1])
    from matplotlib.ticker import MaxNLocator

    what = _SERIES_LABELS.get(metric, metric)
    factor_text = factor.replace("_", " ")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(what)
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title(f"{what} per epoch")
    x = np.arange(len(finals))
    ax2.plot(x, finals, color="tab:blue", marker="o", markersize=7, linewidth=1, alpha=0.9)
    finite = np.asarray([f for f in finals if np.isfinite(f)])
    if finite.size:
        spread = max(float(finite.max() - finite.min()), 1e-6)
        ax2.set_ylim(finite.min() - 0.25 * spread, finite.max() + 0.35 * spread)
        for xi, value in zip(x, finals, strict=True):
            if np.isfinite(value):
                ax2.annotate(f"{value:.1f}", (xi, value), textcoords="offset points", xytext=(0, 8),
                             ha="center", fontsize=9)
    ax2.set_xticks(x, labels)
    ax2.set_xlim(-0.5, len(finals) - 0.5)
    ax2.grid(alpha=0.3, axis="y")
    ax2.set_xlabel(factor_text)
    ax2.set_ylabel(f"{what}, last epoch")
    ax2.set_title(f"after the last epoch, by {factor_text}")
    if title:
        fig.suptitle(title)
    return fig


def figure_png(fig, dpi: int = 80) -> bytes:
    """Render a Figure to PNG bytes (for an ipywidgets.Image)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig, path, dpi: int = 100):
    """Save a Figure atomically (format from the suffix). Returns the Path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path


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
        _set_3d_limits(ax, np.stack([np.asarray(p, dtype=np.float64) for p in poses]))
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
            _set_3d_limits(ax, np.concatenate(poses))
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.set_zlabel("")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
