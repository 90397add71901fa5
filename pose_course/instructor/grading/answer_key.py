"""The instructor's notebooks as the grader reads them: their checks and written answers.

What a check and a written answer are (tags, nbgrader metadata, stored outputs, parameters) is the
contract in pose_course.instructor.grading.grade's docstring; `read_instructor` enforces it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from pose_course.cells import (
    ANSWER_TAG,
    CHECK_MARK,
    CHECK_TAG,
    GRADE_ID_PATTERN,
    HIDDEN_TAG,
    is_checked,
    nbgrader_metadata,
)
from pose_course.cells import tags as _tags
from pose_course.check_outputs import tolerance
from pose_course.runner import NOTEBOOK_PATTERN
from pose_utils.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Check:
    grade_id: str
    points: float
    notebook: str  # file name, e.g. "01_data.ipynb"
    cell: int  # index among all the cells of the instructor's notebook, from 0
    code_cell: int  # nbval's "Cell N" in the parameterized copy
    hidden: bool
    source: str
    expected: str


@dataclasses.dataclass(frozen=True)
class Answer:
    grade_id: str
    points: float
    notebook: str
    template: str  # the cell's text in the instructor's notebook


@dataclasses.dataclass
class Instructor:
    root: Path
    notebooks: dict  # name -> parameterized NotebookNode (only notebooks with checks or answers)
    checks: list
    answers: list
    parameters: frozenset = frozenset()  # the parameter names of those notebooks

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)


def _output_text(outputs) -> str:
    """The plain text nbval compares for a cell's outputs (stdout, text/plain, errors)."""
    parts = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") == "stdout":
            parts.append(out.get("text", ""))
        elif kind in ("execute_result", "display_data") and "text/plain" in out.get("data", {}):
            text = out["data"]["text/plain"]
            parts.append(("".join(text) if isinstance(text, list) else text) + "\n")
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
    return "".join(parts)


def _grading_metadata(cell, where: str, answer: bool) -> tuple[str, float]:
    """(grade_id, points) of a check or, with `answer`, a written answer; ConfigError unless its metadata
    is nbgrader's full schema 3 (pose_course.cells.nbgrader_metadata), which nbgrader itself can read."""
    kind = "answer" if answer else "check"
    meta = cell.get("metadata", {}).get("nbgrader")
    if not isinstance(meta, dict) or meta.get("grade") is not True:
        example = json.dumps(nbgrader_metadata("ID", 1, answer))
        raise ConfigError(f"{where}: a graded {kind} cell needs metadata nbgrader = {example}, with its own "
                          "grade_id and points")
    grade_id, points = meta.get("grade_id"), meta.get("points")
    if not isinstance(grade_id, str) or not re.fullmatch(GRADE_ID_PATTERN, grade_id):
        raise ConfigError(f"{where}: grade_id must be letters, digits, '_' or '-' (nbgrader's rule), "
                          f"got {grade_id!r}")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not points >= 0:
        raise ConfigError(f"{where}: points must be a number >= 0, got {points!r}")
    expected = nbgrader_metadata(grade_id, points, answer)
    wrong = {k: meta.get(k) for k in ("schema_version", "solution", "locked") if meta.get(k) != expected[k]}
    if wrong:
        want = ", ".join(f'"{k}": {json.dumps(expected[k])}' for k in wrong)
        raise ConfigError(f"{where}: {kind} {grade_id!r} needs nbgrader's {want} (nbgrader reads schema "
                          f"{expected['schema_version']} only), got {json.dumps(wrong)}")
    return grade_id, float(points)


def read_instructor(root: str | os.PathLike, parameters: dict | None = None) -> Instructor:
    """The checks and answers of the instructor's notebooks ROOT/notebooks/NN_*.ipynb, each notebook
    parameterized with the names its parameters cell has. ConfigError for anything that breaks the
    contract (pose_course.instructor.grading.grade's docstring), or a parameter no notebook takes."""
    import nbformat
    import papermill
    from papermill.parameterize import parameterize_notebook

    root = Path(root).resolve()
    folder = root / "notebooks"
    found = sorted(folder.glob(NOTEBOOK_PATTERN)) if folder.is_dir() else []
    if not found:
        raise ConfigError(f"{folder}: no instructor notebooks (NN_name.ipynb) in it")
    parameters = dict(parameters or {})
    notebooks, checks, answers, seen, accepted = {}, [], [], {}, set()
    for path in found:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as e:
            raise ConfigError(f"{path}: not a readable notebook ({e})") from None
        for cell in nb.cells:  # papermill reads every cell's tags (its own loader adds the missing ones)
            cell.metadata.setdefault("tags", [])
        cells = list(nb.cells)  # parameterize_notebook inserts a cell into nb itself
        graded = [i for i, c in enumerate(cells) if CHECK_TAG in _tags(c) or ANSWER_TAG in _tags(c)]
        if not graded:
            continue
        names = set(papermill.inspect_notebook(str(path)))
        accepted |= names
        given = {k: v for k, v in parameters.items() if k in names}
        if given:
            nb.metadata.setdefault("papermill", {})  # parameterize_notebook records the values there
        marked = parameterize_notebook(nb, given, kernel_name="python3", language="python") if given else nb
        code_index = {id(c): k for k, c in enumerate(c for c in marked.cells if c.cell_type == "code")}
        for i in graded:
            cell, where = cells[i], f"{path.name} cell {i + 1}"
            grade_id, points = _grading_metadata(cell, where, answer=CHECK_TAG not in _tags(cell))
            if grade_id in seen:
                raise ConfigError(f"{where}: grade_id {grade_id!r} is also used in {seen[grade_id]}")
            seen[grade_id] = where
            if CHECK_TAG in _tags(cell):
                if not is_checked(cell):
                    raise ConfigError(f"{where}: check {grade_id!r} must be a code cell with a line "
                                      f"'# {CHECK_MARK}' (nbval compares only those in lax mode)")
                if cell.get("execution_count") is None:
                    raise ConfigError(f"{where}: check {grade_id!r} has no stored output (run the cell "
                                      "and save the notebook): nbval would pass it whatever it prints")
                try:
                    tolerance(cell.source)
                except ValueError as e:
                    raise ConfigError(f"{where}: check {grade_id!r}: {e}") from None
                checks.append(Check(grade_id, points, path.name, i, code_index[id(cell)],
                                    HIDDEN_TAG in _tags(cell), cell.source, _output_text(cell.outputs)))
            else:
                if cell.cell_type != "markdown":
                    raise ConfigError(f"{where}: answer {grade_id!r} must be a markdown cell")
                answers.append(Answer(grade_id, points, path.name, cell.source))
        notebooks[path.name] = marked
    unknown = sorted(set(parameters) - accepted)
    if unknown:
        raise ConfigError(f"no graded notebook has a parameter named {', '.join(unknown)}; "
                          f"known parameters: {', '.join(sorted(accepted)) or 'none'}")
    if not checks and not answers:
        raise ConfigError(f"{folder}: no cell is tagged '{CHECK_TAG}' or '{ANSWER_TAG}'")
    return Instructor(root, notebooks, checks, answers, frozenset(accepted))
