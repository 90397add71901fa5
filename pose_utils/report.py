"""The course report's numbers (RPI ECSE 4850, Programming Assignment 4), shown beside ours and never used
in a computation.
"""

from __future__ import annotations

# The report's per-joint MPJPE table in millimetres, joints 1..17 in the Human3.6M order of
# skeleton.JOINT_NAMES (Pelvis first).
REPORT_PER_JOINT_MPJPE_MM: tuple[float, ...] = (
    17.38, 40.59, 83.66, 167.78, 37.50, 85.08, 164.06, 53.92, 46.95,
    63.31, 60.47, 57.83, 106.52, 170.22, 71.60, 112.17, 186.93,
)
