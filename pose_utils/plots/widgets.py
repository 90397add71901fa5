"""Interactive scrubbers for notebooks 01 and 04: pick a clip and a frame with sliders (ipywidgets).

`clip_browser(store, predictions=None)` returns a widget (two sliders, a play button and an image of the
chosen frame: the picture with its projected skeleton, the 3-D pose beside it, the prediction dashed
purple over it when given). `scrub(store, ...)` displays that widget and returns a static Figure of the
first clip (`plots.clip_strip`), so a headless run (papermill, nbval, a PDF export) still shows the
result: a widget's picture exists only while a kernel is attached.

The image is rendered with matplotlib's Agg into PNG bytes (`plots.figure_png`) and set on an
`ipywidgets.Image`, so the widget works with any matplotlib backend and leaves no figures behind. It is
shown at a fixed width (DISPLAY_WIDTH_PX, less on a narrow page) from a PNG of twice as many pixels, so
it stays sharp on high-density screens instead of being stretched across the cell. Frames are numbered
1 to 8 on the slider, as in the captions and the report's figures.
"""

from __future__ import annotations

import numpy as np

from pose_utils.errors import PoseUtilsError

DISPLAY_WIDTH_PX = 720  # CSS pixels the frame picture takes in JupyterLab
PIXEL_DENSITY = 2  # PNG pixels per CSS pixel (2: sharp on a 2x screen and when the browser zooms)


def projected_joints(store, index: int):
    """The labels of clip `index` of a ClipStore projected onto its frames: (T, 17, 2) pixels, or None.

    Needs the per-clip `root` (T, 3) metres and `intrinsics` (3, 3) that the embedded dataset stores;
    the course's .npy layout has neither, so its frames are shown without a skeleton.
    """
    from pose_utils.camera import project

    meta = getattr(store, "meta", {}) or {}
    if "root" not in meta or "intrinsics" not in meta:
        return None
    joints = np.asarray(store.joints[index], dtype=np.float64)
    root = np.asarray(meta["root"][index], dtype=np.float64)
    root = root[:, None, :] if root.ndim == 2 else root
    return project(joints + root, np.asarray(meta["intrinsics"][index], dtype=np.float64))


def clip_title(store, index: int) -> str:
    """"clip 3: S9 walk cam2" from the store's metadata (just "clip 3" without metadata)."""
    meta = getattr(store, "meta", {}) or {}
    parts = [f"clip {index}:"]
    for key, fmt in (("subject", "{}"), ("action", "{}"), ("camera", "cam{}")):
        if key in meta:
            value = meta[key][index]
            value = value.decode() if isinstance(value, bytes) else value
            value = value.item() if isinstance(value, np.generic) else value
            parts.append(fmt.format(value))
    return " ".join(parts).rstrip(":")


def _clip(store, index: int, predictions=None) -> dict:
    frames = store.read_frames([index])[0]
    return {
        "frames": frames,
        "joints_2d": projected_joints(store, index),
        "y_true": np.asarray(store.joints[index], dtype=np.float64),
        "y_pred": None if predictions is None else np.asarray(predictions[index], dtype=np.float64),
        "title": clip_title(store, index),
    }


def _check(store, predictions, indices):
    n = len(store)
    if n == 0:
        raise PoseUtilsError("the split has no clips to show")
    if predictions is not None and np.shape(predictions)[:1] != (n,):
        raise PoseUtilsError(f"predictions must hold one pose sequence per clip ({n}), got shape "
                             f"{np.shape(predictions)}")
    indices = list(range(n)) if indices is None else [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < n]
    if bad or not indices:
        raise PoseUtilsError(f"clip indices must be in [0, {n}), got {bad or indices}")
    return indices


def clip_browser(store, predictions=None, indices=None, width_px: int = DISPLAY_WIDTH_PX,
                 density: int = PIXEL_DENSITY):
    """A widget to scrub through clips and frames of a ClipStore.

    store: from `data.open_split`; predictions: (N, T, 17, 3) metres aligned with the store's clips (e.g.
    predictions.npz's y_pred) or None; indices: the clips offered (default all); width_px: the picture's
    width on the page; density: PNG pixels per page pixel. Returns an ipywidgets.VBox; its
    `.show(clip, frame)` method jumps to a clip (position in `indices`) and a frame (1 to 8).
    """
    import ipywidgets as w

    from pose_utils import plots

    indices = _check(store, predictions, indices)
    cache: dict[int, dict] = {}

    def clip(position: int) -> dict:
        index = indices[position]
        if index not in cache:
            cache.clear()  # keep one clip in memory: frames at 224 are 1.2 MB each
            cache[index] = _clip(store, index, predictions)
        return cache[index]

    clip_slider = w.IntSlider(0, 0, len(indices) - 1, description="clip", continuous_update=False)
    frame_slider = w.IntSlider(1, 1, store.num_frames, description="frame")
    play = w.Play(value=1, min=1, max=store.num_frames, interval=400, description="play")
    w.jslink((play, "value"), (frame_slider, "value"))
    image = w.Image(format="png", layout=w.Layout(width=f"{int(width_px)}px", max_width="100%",
                                                    height="auto"))
    caption = w.Label()

    def redraw(*_):
        c = clip(clip_slider.value)
        t = frame_slider.value - 1
        fig = plots.frame_figure(
            c["frames"][t], None if c["joints_2d"] is None else c["joints_2d"][t], c["y_true"][t],
            None if c["y_pred"] is None else c["y_pred"][t],
        )
        # dpi so that the PNG is `density` pixels per page pixel at width_px on the page
        image.value = plots.figure_png(fig, dpi=density * width_px / fig.get_figwidth())
        text = f"{c['title']}, frame {t + 1}/{store.num_frames}"
        if c["y_pred"] is not None:
            err = np.linalg.norm(c["y_pred"][t] - c["y_true"][t], axis=-1).mean() * 1000.0
            text += f", MPJPE {err:.0f} mm"
        caption.value = text

    clip_slider.observe(redraw, names="value")
    frame_slider.observe(redraw, names="value")
    redraw()
    box = w.VBox([w.HBox([clip_slider, frame_slider, play]), caption, image])

    def show(clip_position: int = 0, frame: int = 1):
        clip_slider.value, frame_slider.value = clip_position, frame

    box.show = show
    return box


def scrub(store, predictions=None, indices=None, static_clip: int | None = None):
    """Display `clip_browser(...)` and return the static Figure of one clip (`plots.clip_strip`).

    Use as the last line of a notebook cell: the widget appears when a kernel is attached, the Figure
    is shown in every case (headless runs included). static_clip: the clip drawn (default the first
    offered).
    """
    from IPython.display import display

    from pose_utils import plots

    indices = _check(store, predictions, indices)
    try:
        display(clip_browser(store, predictions, indices))
    except ImportError:  # ipywidgets missing: the static figure still tells the story
        pass
    index = indices[0] if static_clip is None else int(static_clip)
    c = _clip(store, index, predictions)
    return plots.clip_strip(c["frames"], c["joints_2d"], c["y_true"], c["y_pred"], title=c["title"])
