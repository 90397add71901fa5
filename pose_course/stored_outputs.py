"""The committed notebooks stay small and gradable: which cells nbval checks, and what a committed
notebook keeps (the plain text of those cells' outputs, nothing else).

Graders run `pytest --nbval-lax notebooks/`: nbval re-runs each notebook and compares only the cells
marked `# NBVAL_CHECK_OUTPUT` with their stored outputs (notebooks/conftest.py lists what it never
compares). `strip_notebook` is what a committed notebook holds; `refresh_checked_outputs` stores a
checked cell's new output after an edit.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pose_course.cells import is_checked
from pose_course.records import RECORD_MIME

# The attribute of a pytest session's config that maps a committed notebook (resolved path) to the copy
# of it the session already executed (tests/test_notebooks.py's papermill run): nbval's items for that
# notebook check the copy instead of executing the notebook again (notebooks/conftest.py).
SESSION_EXECUTED = "pose_utils_executed_notebooks"
# Output kinds kept in a checked cell: plain text only (never images, HTML, widgets, records or stderr).
_KEPT_MIME = ("text/plain",)


def _kept_outputs(outputs) -> list:
    import nbformat

    kept = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") == "stdout":
            if kept and kept[-1].get("output_type") == "stream":
                # one print may reach the notebook in several messages; nbval joins them too
                kept[-1]["text"] += out.get("text", "")
            else:
                kept.append(nbformat.v4.new_output("stream", name="stdout", text=out.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = {k: v for k, v in out.get("data", {}).items() if k in _KEPT_MIME}
            if data and RECORD_MIME not in out.get("data", {}):
                extra = {"execution_count": out.get("execution_count")} if kind == "execute_result" else {}
                kept.append(nbformat.v4.new_output(kind, data=data, **extra))
    return kept


def strip_notebook(nb, executed=None):
    """The notebook as committed: outputs only in checked cells (plain text, taken from `executed`, a
    run of the same notebook, when given), no execution counts elsewhere, no papermill metadata.
    Returns a new NotebookNode; `nb` is not modified."""
    import copy

    nb = copy.deepcopy(nb)
    ran = {}
    if executed is not None:
        ran = {c.get("id"): c for c in executed.cells if c.get("cell_type") == "code"}
    for cell in nb.cells:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if cell.get("cell_type") != "code":
            continue
        if is_checked(cell):
            source = ran.get(cell.get("id"), cell)
            cell["outputs"] = _kept_outputs(source.get("outputs", []))
            cell["execution_count"] = source.get("execution_count")
            for out in cell["outputs"]:
                if out.get("output_type") == "execute_result":
                    out["execution_count"] = cell["execution_count"]
        else:
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    return nb


def refresh_checked_outputs(notebook: str | os.PathLike, progress: bool = True) -> Path:
    """Run NOTEBOOK with its default parameters (in its folder, as nbval does) and store the outputs of its
    checked cells in it, every other output stripped. For whoever edits a notebook's checked cells:

    python -c "import pose_course.stored_outputs as n; n.refresh_checked_outputs('notebooks/02_model.ipynb')"
    """
    import nbformat

    from pose_course.execute import execute_notebook
    from pose_utils.fileio import atomic_path

    notebook = Path(notebook)
    with tempfile.TemporaryDirectory() as tmp:
        executed_path = execute_notebook(notebook, Path(tmp) / notebook.name, {}, progress=progress)
        executed = nbformat.read(executed_path, as_version=4)
    nb = strip_notebook(nbformat.read(notebook, as_version=4), executed)
    with atomic_path(notebook) as out:
        nbformat.write(nb, str(out))
    return notebook
