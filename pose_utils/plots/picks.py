"""What notebooks 01 and 04 choose to draw: a contact sheet of a split, and the clips worth showing."""

from __future__ import annotations

from pose_utils.errors import ConfigError


def frame_grid(store, n_clips: int = 4, frame_indices=(0, 3, 7), clips=None):
    """A contact sheet of a split: frames `frame_indices` (0-based indices, titled from "frame 1") of
    `n_clips` clips spread over it, with the labels projected onto them where the data stores the camera
    (`widgets.projected_joints`). Returns a Figure (`plots.contact_sheet`), one row per clip."""
    import numpy as np

    from pose_utils.data import subset
    from pose_utils.plots import contact_sheet
    from pose_utils.plots.widgets import clip_title, projected_joints

    if clips is None:
        clips = subset(len(store), max(int(n_clips), 0))
    clips = [int(c) for c in clips]
    frame_indices = [int(f) for f in frame_indices if 0 <= int(f) < store.num_frames]
    if not clips or not frame_indices:
        raise ConfigError("frame_grid needs at least one clip and one valid frame index")
    frames = store.read_frames(clips)[:, frame_indices]
    uv = [projected_joints(store, c) for c in clips]
    joints_2d = None if any(u is None for u in uv) else np.stack(uv)[:, frame_indices]
    # frames are numbered from 1 in every title and caption (the report's figures do so)
    titles = [f"{clip_title(store, c)}, frame {f + 1}" if k == 0 else f"frame {f + 1}" for c in clips
              for k, f in enumerate(frame_indices)]
    return contact_sheet(frames.reshape(-1, *frames.shape[2:]),
                         None if joints_2d is None else joints_2d.reshape(-1, *joints_2d.shape[2:]),
                         titles=titles, ncols=len(frame_indices), panel_inches=2.0)


def pick_clips(y_true, y_pred, k: int = 3) -> list[int]:
    """k clip indices from the best to the worst by MPJPE (best, ..., median, ..., worst), for showing
    what a model gets right and wrong. y_true, y_pred: (N, T, 17, 3)."""
    import numpy as np

    errors = np.linalg.norm(np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64), axis=-1)
    order = np.argsort(errors.reshape(len(errors), -1).mean(axis=1), kind="stable")
    if k >= len(order):
        return [int(i) for i in order]
    return [int(order[i]) for i in np.linspace(0, len(order) - 1, k).round().astype(int)]
