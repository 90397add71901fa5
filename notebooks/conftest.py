"""nbval settings for `pytest --nbval-lax notebooks/` (graders) and `make test`.

- stderr is never compared: TensorFlow and absl write start-up lines to stderr before logging is
  configured; they appear in notebooks saved by JupyterLab or papermill but not in nbval's own run.
- Widget views, HTML and JavaScript (tqdm bars, ipywidgets, animations) and the values a notebook records
  for the runner (pose_utils.notebooks.RECORD_MIME) are not compared either; PNG images never are.
Only cells marked `# NBVAL_CHECK_OUTPUT` are compared in lax mode; their stored outputs are plain text.
"""

import os

# Quiet TensorFlow's C++ logging and tqdm in the kernels nbval starts (they inherit this environment).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("TQDM_DISABLE", "1")

SKIP_COMPARE = (
    "stderr",
    "text/html",
    "application/javascript",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.pose-utils.record+json",
)


def pytest_collectstart(collector):
    """Add our skips to every notebook nbval collects (its IPyNbFile collector has `skip_compare`)."""
    if hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + tuple(
            k for k in SKIP_COMPARE if k not in collector.skip_compare
        )
