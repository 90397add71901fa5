"""Figures written: PNG bytes for a notebook or a report, a figure or an animation saved atomically.
"""

from __future__ import annotations

from pathlib import Path

from pose_utils.errors import PoseUtilsError
from pose_utils.fileio import atomic_path


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
