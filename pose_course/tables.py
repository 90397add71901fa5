"""The tables the notebooks print or display: plain text for cells nbval checks, Markdown for display.

Every table is built from rows (first row = header) by `text_table` or `markdown_table`, so each one is
deterministic text: no memory addresses, no version-dependent box drawing.
"""

from __future__ import annotations

import math


def text_table(rows, align: str | None = None) -> str:
    """Rows (first row = header) as an aligned plain-text table. align: one 'l' or 'r' per column."""
    rows = [[str(c) for c in row] for row in rows]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    align = align or "l" * len(widths)
    lines = []
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows) -> str:
    """Rows (first row = header) as a Markdown table (for IPython.display.Markdown)."""
    rows = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the data and the model


def skeleton_table() -> str:
    """The 17 joints as a text table: number (1-based, as in the report), name, parent, side."""
    from pose_utils.skeleton import JOINT_NAMES, LEFT, PARENTS, RIGHT

    rows = [("joint", "name", "parent", "side")]
    for j, name in enumerate(JOINT_NAMES):
        parent = JOINT_NAMES[PARENTS[j]] if PARENTS[j] >= 0 else "-"
        side = "left" if j in LEFT else "right" if j in RIGHT else "centre"
        rows.append((j + 1, name, parent, side))
    return text_table(rows, align="rlll")


def bone_table(joints) -> str:
    """Bone lengths of labels (..., 17, 3) metres: mean, std and range per bone in mm, as a text table.

    A rigid skeleton keeps each bone's length; a spread shows several subjects (body sizes) in the data.
    """
    import numpy as np

    from pose_utils.skeleton import BONES, JOINT_NAMES, bone_lengths

    lengths = bone_lengths(np.asarray(joints, dtype=np.float64)).reshape(-1, len(BONES)) * 1000.0
    rows = [("bone", "mean (mm)", "std (mm)", "min (mm)", "max (mm)")]
    for b, (child, parent) in enumerate(BONES):
        x = lengths[:, b]
        rows.append((f"{JOINT_NAMES[parent]}-{JOINT_NAMES[child]}", f"{x.mean():.0f}", f"{x.std():.1f}",
                     f"{x.min():.0f}", f"{x.max():.0f}"))
    return text_table(rows, align="lrrrr")


def layer_table(model) -> str:
    """The model's layers as a fixed-width text table: name, type, output shape (batch omitted), params.

    Deterministic (no memory addresses, no Keras version's box drawing), so notebooks can check it.
    """
    rows = [("layer", "type", "output shape", "params")]
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(layer.output.shape) if shape is not None else ()
        shape_text = "(B, " + ", ".join(str(s) for s in shape[1:]) + ")"
        rows.append((layer.name, type(layer).__name__, shape_text, f"{layer.count_params():,}"))
    rows.append(("total", "", "", f"{model.count_params():,}"))
    return text_table(rows, align="lllr")


# ----------------------------------------------------------------------------- training and evaluation


def history_table(history: dict) -> str:
    """A run's history (history.json) as a text table, one row per epoch: losses (eq. 2, target space),
    MPJPE in mm (eq. 3), seconds and training clips per second."""
    columns = (("train_loss", "train loss", "{:.5f}"), ("val_loss", "val loss", "{:.5f}"),
               ("train_mpjpe", "train MPJPE (mm)", "{:.1f}"), ("val_mpjpe", "val MPJPE (mm)", "{:.1f}"),
               ("epoch_seconds", "seconds", "{:.1f}"), ("clips_per_second", "clips/s", "{:.1f}"))
    n = max((len(history.get(k) or []) for k, _, _ in columns), default=0)
    rows = [("epoch", *(label for _, label, _ in columns))]
    for e in range(n):
        row = [e + 1]
        for key, _, fmt in columns:
            values = history.get(key) or []
            row.append(fmt.format(values[e]) if e < len(values) and not math.isnan(values[e]) else "-")
        rows.append(row)
    return text_table(rows, align="r" * len(rows[0]))


METRIC_ROWS = (
    ("mpjpe_mm", "MPJPE, Protocol 1 (eq. 3)", "mm", "{:.1f}"),
    ("p_mpjpe_mm", "P-MPJPE, Protocol 2 (after Procrustes alignment)", "mm", "{:.1f}"),
    ("n_mpjpe_mm", "N-MPJPE (after scale alignment)", "mm", "{:.1f}"),
    ("mpjve_mm", "MPJVE (velocity error per frame)", "mm", "{:.1f}"),
    ("pck3d_150mm", "3D PCK at 150 mm", "%", "{:.1f}"),
    ("auc", "AUC of PCK, 0-150 mm", "%", "{:.1f}"),
)


def metrics_rows(model: dict, baseline: dict | None = None) -> list[list[str]]:
    """The headline metrics of a model (and of the baseline beside it) as table rows (first row header).

    model, baseline: metrics dicts (evaluate.compute_metrics / metrics.json). Fractions become percent.
    """
    rows = [["metric", "model", *(["mean-pose baseline"] if baseline else []), "unit"]]
    for key, label, unit, fmt in METRIC_ROWS:
        if key not in model:
            continue
        scale = 100.0 if unit == "%" else 1.0
        row = [label, fmt.format(model[key] * scale)]
        if baseline:
            row.append(fmt.format(baseline[key] * scale) if key in baseline else "-")
        rows.append([*row, unit])
    return rows


def per_joint_table_rows(model: dict, baseline: dict | None = None) -> list[list[str]]:
    """The report's per-joint table beside ours: joint number, name, this model, [baseline,] report (mm)."""
    from pose_utils.plots import per_joint_rows

    rows = per_joint_rows(model["per_joint_mpjpe_mm"],
                          baseline_mm=None if baseline is None else baseline["per_joint_mpjpe_mm"])
    header = ["joint", "name", "this model (mm)", *(["mean-pose baseline (mm)"] if baseline else []),
              "report (mm)"]
    table = [header]
    for r in rows:
        table.append([str(r["joint"]), r["name"], f"{r['mpjpe_mm']:.1f}",
                      *([f"{r['baseline_mm']:.1f}"] if baseline else []), f"{r['report_mm']:.2f}"])
    return table
