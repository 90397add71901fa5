"""TensorFlow's CPU settings, which must be in place before TensorFlow is imported.

TensorFlow 2.21 turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on
others (AVX2-only x86 CPUs) it runs its Eigen kernels, about 5x slower for the seed model's training step
(docs/training.md). It reads `TF_ENABLE_ONEDNN_OPTS` once, at import, and `import keras` imports it too,
so the variable has to be set before whichever of the two a program or notebook imports first:

- `import pose_utils` sets it (this module runs first);
- `make` installs `pose_utils_tf_env.pth` into the virtual environment, a line Python runs at every
  start-up, so that every kernel and process of that environment has it, whatever it imports first
  (`python -m pose_utils.runtime` installs it into another environment);
- a value the user set is kept (`TF_ENABLE_ONEDNN_OPTS=0` turns oneDNN off), and
  `POSE_UTILS_TF_DEFAULTS=1` leaves TensorFlow's own default (benchmarks compare the two).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"
KEEP_DEFAULTS_VAR = "POSE_UTILS_TF_DEFAULTS"
PTH_NAME = "pose_utils_tf_env.pth"
# The same rule as apply(), as the single line a .pth file may run (no import of pose_utils at start-up).
PTH_LINE = (
    f'import os; os.environ.get("{KEEP_DEFAULTS_VAR}") == "1" '
    f'or os.environ.setdefault("{ONEDNN_VAR}", "1")\n'
)


def apply(environ=os.environ) -> None:
    """Turn oneDNN on unless the user chose a value, or asked for TensorFlow's defaults."""
    if environ.get(KEEP_DEFAULTS_VAR) != "1":
        environ.setdefault(ONEDNN_VAR, "1")


def onednn_enabled() -> bool:
    """Whether the TensorFlow of this process runs its oneDNN kernels (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def install_pth(site_dir: str | os.PathLike | None = None) -> Path:
    """Write PTH_NAME into `site_dir` (default: this interpreter's site-packages); returns its path."""
    folder = Path(site_dir or sysconfig.get_paths()["purelib"])
    path = folder / PTH_NAME
    tmp = path.with_name(f".{PTH_NAME}.tmp")
    tmp.write_text(PTH_LINE)
    os.replace(tmp, path)
    return path


def main() -> int:
    print(f"wrote {install_pth()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
