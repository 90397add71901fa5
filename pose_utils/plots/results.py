"""Results drawn: the training curves (the report's Figures 1-4), per-joint bars beside the report's table
and the baseline, MPJPE by group, a sweep's curves, and the labels' statistics.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from pose_utils.errors import PoseUtilsError
from pose_utils.report import REPORT_PER_JOINT_MPJPE_MM
from pose_utils.skeleton import JOINT_NAMES, NUM_JOINTS

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

    results: [{"<factor>": value, "history": {metric: [...per epoch]}, ...}] (pose_course.sweep), with
    "seed" when a setting ran once per seed. Returns a Figure with (left) the per-epoch curves and
    (right) the last epoch's value per setting, as points on an axis that spans the values (not from 0,
    which would flatten differences of 10-20 mm between runs near 300 mm), each labelled with its value;
    the runs of one setting with different seeds share its column, so their spread shows.
    """
    runs = [r for r in results if factor in r and r.get("history", {}).get(metric)]
    if not runs:
        raise PoseUtilsError(f"no sweep result has both {factor!r} and a {metric!r} history")
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    labels, finals, x = [], [], []
    seeded = len({r.get("seed") for r in runs}) > 1
    for r in runs:
        values = np.asarray(r["history"][metric], dtype=np.float64)
        text = f"{r[factor]:g}" if isinstance(r[factor], float) else str(r[factor])
        label = f"{factor.replace('_', ' ')} {text}" + (f", seed {r['seed']}" if seeded else "")
        ax1.plot(np.arange(1, values.size + 1), values, marker="o", markersize=3, label=label)
        if text not in labels:
            labels.append(text)
        x.append(labels.index(text))
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
    x = np.asarray(x)
    ax2.plot(x, finals, color="tab:blue", marker="o", markersize=7, linewidth=0 if seeded else 1, alpha=0.9)
    finite = np.asarray([f for f in finals if np.isfinite(f)])
    if finite.size:
        spread = max(float(finite.max() - finite.min()), 1e-6)
        ax2.set_ylim(finite.min() - 0.25 * spread, finite.max() + 0.35 * spread)
        for xi, value in zip(x, finals, strict=True):
            if np.isfinite(value):
                ax2.annotate(f"{value:.1f}", (xi, value), textcoords="offset points", xytext=(0, 8),
                             ha="center", fontsize=9)
    ax2.set_xticks(np.arange(len(labels)), labels)
    ax2.set_xlim(-0.5, len(labels) - 0.5)
    ax2.grid(alpha=0.3, axis="y")
    ax2.set_xlabel(factor_text)
    ax2.set_ylabel(f"{what}, last epoch")
    ax2.set_title(f"after the last epoch, by {factor_text}")
    if title:
        fig.suptitle(title)
    return fig
