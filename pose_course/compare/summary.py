"""The comparison's results as people read them: results.md (the comparison table, the per-joint table
beside the report's) and per_joint.png.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pose_course.compare.recipes import BASELINE, SEED
from pose_utils.fileio import atomic_path
from pose_utils.report import REPORT_PER_JOINT_MPJPE_MM  # the report's per-joint table, joints 1..17
from pose_utils.skeleton import JOINT_NAMES


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}" if reference and math.isfinite(reference) else "-"


def markdown(results: dict) -> str:
    """results.md: the comparison table, then per-joint MPJPE next to the report's table."""
    models = results["models"]
    seed = models.get(SEED, {})
    data = results["data"]
    reused = sum(bool(m.get("reused")) for m in models.values())
    lines = [
        f"# Benchmark `{results['preset']}`",
        "",
        f"{data['train_clips']} training clips, {data['valid_clips']} held-out validation clips "
        f"(subjects {', '.join(data['valid_subjects'] or ['?'])}), "
        f"{data['frame_size']}x{data['frame_size']} frames; {results['machine']['cpus']} CPU(s). "
        f"This invocation took {results['total_seconds'] / 60:.1f} min"
        + (f" and reused {reused} finished run(s) of an earlier one." if reused else "."),
        "Rendered data, not Human3.6M: these numbers are not comparable with Human3.6M results.",
        "",
        "| model | MPJPE (mm) | P-MPJPE (mm) | × seed | params | epochs | train time (s) | what it is |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, m in models.items():
        ratio = _ratio(m["mpjpe_mm"], seed.get("mpjpe_mm"))
        lines.append(
            f"| `{name}` | {m['mpjpe_mm']:.1f} | {m['p_mpjpe_mm']:.1f} | {ratio} "
            f"| {m['params']:,} | {m['epochs']} | {m['train_seconds']:.0f} | {m['description']} |"
        )
    names = list(models)
    lines += [
        "",
        "## Per-joint MPJPE (mm)",
        "",
        "| joint | " + " | ".join(f"`{n}`" for n in names) + " | report (Human3.6M) |",
        "| --- | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for j, joint in enumerate(JOINT_NAMES):
        values = " | ".join(f"{models[n]['per_joint_mpjpe_mm'][joint]:.1f}" for n in names)
        lines.append(f"| {j + 1} {joint} | {values} | {REPORT_PER_JOINT_MPJPE_MM[j]:.2f} |")
    return "\n".join(lines) + "\n"


def write_markdown(path, results: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(markdown(results), encoding="utf-8")


def plot_results(results: dict, path) -> None:
    """Grouped horizontal bars: per-joint MPJPE of every entry, and the report's values as markers."""
    from matplotlib.figure import Figure

    models = results["models"]
    names = list(models)
    fig = Figure(figsize=(8, 9), layout="constrained")
    ax = fig.subplots()
    rows = np.arange(len(JOINT_NAMES))
    height = 0.85 / len(names)
    colors = {BASELINE: "0.7", SEED: "tab:orange"}
    cycle = iter(["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:cyan", "tab:olive",
                  "tab:red"] * 4)
    for i, name in enumerate(names):
        values = [models[name]["per_joint_mpjpe_mm"][j] for j in JOINT_NAMES]
        ax.barh(rows + (i - (len(names) - 1) / 2) * height, values, height=height,
                color=colors.get(name) or next(cycle), label=f"{name} ({models[name]['mpjpe_mm']:.0f} mm)")
    ax.plot(REPORT_PER_JOINT_MPJPE_MM, rows, "kD", markersize=4, label="report (Human3.6M, seed)")
    ax.set_yticks(rows, [f"{j + 1} {n}" for j, n in enumerate(JOINT_NAMES)])
    ax.invert_yaxis()
    ax.set_xlabel("MPJPE (mm), held-out subjects")
    ax.grid(axis="x", alpha=0.3)
    # Below the axes: inside, it would hide the longest bars (the wrists and ankles, at the bottom).
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncols=3, fontsize="small", frameon=False)
    ax.set_title(f"Per-joint MPJPE, benchmark '{results['preset']}' (rendered data)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
