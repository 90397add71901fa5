"""The values a notebook records for the runner and the tests: `record` in a cell, `read_records` on the
executed notebook.

A record is a display-data output with its own mimetype (what scrapbook's `glue` did, without the
dependency): {"name": ..., "value": ...} with a JSON value, shown in the notebook as `name = value`.
nbval never compares it (notebooks/conftest.py) and the committed notebooks never store it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

RECORD_MIME = "application/vnd.pose-utils.record+json"


def _jsonable(value):
    """numpy scalars/arrays and Paths as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def record(name: str, value) -> None:
    """Record a value in the notebook's output for the runner and the tests (shown as `name = value`)."""
    from IPython.display import display

    value = _jsonable(value)
    json.dumps(value)  # fail here, in the notebook, if it is not JSON
    display({RECORD_MIME: {"name": name, "value": value}, "text/plain": f"{name} = {value!r}"}, raw=True)


def read_records(notebook) -> dict:
    """Every value a notebook recorded with `record`, {name: value} (later records win).

    notebook: a path to an executed .ipynb or an nbformat NotebookNode.
    """
    import nbformat

    nb = notebook if not isinstance(notebook, (str, os.PathLike)) else nbformat.read(notebook, as_version=4)
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIME in data:
                item = data[RECORD_MIME]
                if isinstance(item, str):
                    item = json.loads(item)
                found[item["name"]] = item["value"]
    return found
