"""How check cells' outputs are compared (pose_course.check_outputs): text exactly, numbers within
a tolerance, the same in `make check` and in the grader."""

from __future__ import annotations

import nbformat
import pytest

from pose_course.cells import nbgrader_metadata
from pose_course.check_outputs import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    as_text,
    flatten,
    outputs_match,
    texts_match,
    tolerance,
)


@pytest.mark.parametrize("expected, got, same", [
    ("eq. (2) = 0.030882, of 816", "eq. (2) = 0.030882, of 816", True),
    ("mpjpe 321.41234567 mm", "mpjpe 321.41234569 mm", True),  # the 9th significant digit
    ("mpjpe 321.4 mm", "mpjpe 321.5 mm", False),
    ("eq. (2) = 0.25, of 816", "eq. (2) = 0.030882, of 816", False),
    ("shape (8, 17, 3)", "shape (8, 17, 4)", False),
    ("x = 1e-3.", "x = 0.001.", True),  # a sentence may end right after a number
    ("-0.5", "+0.5", False),
    ("conv2d_1 relu", "conv2d_2 relu", False),  # digits inside names are text
    ("version 1.2.3", "version 1.2.4", False),
    ("loss 0.25", "loss 0.25 !", False),
    ("0.0", "1e-10", True),  # within atol
])
def test_texts_match(expected, got, same):
    assert texts_match(expected, got) is same


def test_tolerance_line_of_a_check_cell():
    assert tolerance("print(1)") == (DEFAULT_RTOL, DEFAULT_ATOL) == (1e-6, 1e-9)
    assert tolerance("# NBVAL_CHECK_OUTPUT\n# CHECK_TOLERANCE rtol=1e-3 atol=0\nprint(1)") == (1e-3, 0.0)
    assert tolerance("# CHECK_TOLERANCE atol=0.5") == (DEFAULT_RTOL, 0.5)
    assert texts_match("MPJPE 100.0", "MPJPE 100.09", *tolerance("# CHECK_TOLERANCE rtol=1e-3"))
    for bad in ("# CHECK_TOLERANCE rtol=-1", "# CHECK_TOLERANCE rtol=x", "# CHECK_TOLERANCE tol=1e-3",
                "# CHECK_TOLERANCE rtol=nan"):
        with pytest.raises(ValueError, match="expected '# CHECK_TOLERANCE rtol=R atol=A'"):
            tolerance(bad)


def test_flattened_outputs_as_nbval_compares_them():
    outs = [nbformat.v4.new_output("stream", name="stdout", text="mse 0.25\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": "(8, 17, 3)"}, execution_count=3)]
    skip = ("metadata", "output_type", "name", "execution_count")
    flat = flatten(outs, skip)
    assert flat == {"stdout": ["mse 0.25\n"], "text/plain": ["(8, 17, 3)"]}
    assert as_text(flat) == "mse 0.25\n(8, 17, 3)\n"
    near = {"stdout": ["mse 0.2500000001\n"], "text/plain": ["(8, 17, 3)"]}
    assert outputs_match(flat, near, DEFAULT_RTOL, DEFAULT_ATOL)
    assert not outputs_match(flat, {"stdout": ["mse 0.25\n"]}, DEFAULT_RTOL, DEFAULT_ATOL)
    assert not outputs_match(flat, {**near, "stdout": ["mse 0.25\n", "again\n"]}, DEFAULT_RTOL, DEFAULT_ATOL)


STUDENT_MODULE = '''\
def add(a, b):
    return a + b


def mul(a, b):
    return a * b + 1


def div(a, b):
    return a / str(b)
'''


def test_make_check_explains_each_failed_check(tmp_path):
    """What `make check` prints (notebooks/conftest.py): each failed check's exception at the student's
    line, or its first differing output lines; failing cells that are not checks are named."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    def cell(source, grade_id=None, points=0, output=None):
        meta = {"tags": ["check"], "nbgrader": nbgrader_metadata(grade_id, points)} if grade_id else {}
        c = nbformat.v4.new_code_cell(source, metadata=meta)
        if output is not None:
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
            c.execution_count = 1
        return c

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [cell("import mathx"),
                cell("# NBVAL_CHECK_OUTPUT\nprint(mathx.add(2, 3))", "add", 2, "5\n"),
                cell("# NBVAL_CHECK_OUTPUT\nprint(mathx.mul(2, 3))\nprint('done')", "mul", 3, "6\ndone\n"),
                cell("# NBVAL_CHECK_OUTPUT\nprint(mathx.div(6, 3))", "div", 1, "2.0\n"),
                cell("1 / 0")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, str(tmp_path / "notebooks" / "01_math.ipynb"))
    shutil.copy(Path(__file__).resolve().parents[1] / "notebooks" / "conftest.py", tmp_path / "notebooks")
    (tmp_path / "mathx.py").write_text(STUDENT_MODULE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PYTEST_CURRENT_TEST", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "notebooks", "--nbval-lax", "--nbval-current-env",
                           "-p", "no:cacheprovider", "-q", "--tb=no", "-rN",
                           "--check-record", "out/record.json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    words = " ".join(out.split())
    assert "checks: 1 of 3 passed, 2 of 6 points" in words
    assert "FAIL 01_math.ipynb mul 0/3 output differs from the reference: expected: 6 yours: 7 FAIL" in words
    assert ("FAIL 01_math.ipynb div 0/1 TypeError: unsupported operand type(s) for /: 'int' and 'str' "
            "(at mathx.py:10, in div)") in words
    assert ("cells that failed and are not checks (1): 01_math.ipynb Cell 4 (`1 / 0`): ZeroDivisionError: "
            "division by zero") in words  # the cell's first line, to find it in the notebook
    # the record GitHub Classroom's steps read (pose_course.classroom), relative to pytest's folder
    from pose_course.classroom import passed

    path = tmp_path / "out" / "record.json"
    record = json.loads(path.read_text())
    assert {k: (v["earned"], v["points"], v["outcome"], v["notebook"]) for k, v in record.items()} == {
        "add": (2, 2, "passed", "01_math.ipynb"), "mul": (0, 3, "failed", "01_math.ipynb"),
        "div": (0, 1, "failed", "01_math.ipynb")}
    assert passed("add", path) == (True, "add: passed, 2 of 2 points (01_math.ipynb)")
    assert passed("div", path) == (
        False, "div: failed, 0 of 1 points (01_math.ipynb): TypeError: unsupported operand type(s) for /: "
        "'int' and 'str' (at mathx.py:10, in div)")


def test_unwritten_exercises_are_found_in_the_source(tmp_path):
    from pose_course.checks import unwritten_exercises

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text(
        'def f():\n    # YOUR CODE HERE\n    raise NotImplementedError(\n'
        '        "Exercise: write f in pkg/a.py (01_x.ipynb explains it)")\n\n\n'
        'def g():\n    raise NotImplementedError("Exercise: write g in pkg/a.py")\n')
    (tmp_path / "pkg" / "sub" / "b.py").write_text('raise NotImplementedError("not an exercise")\n')
    assert unwritten_exercises(tmp_path / "pkg") == ["Exercise: write f in pkg/a.py (01_x.ipynb explains it)",
                                                     "Exercise: write g in pkg/a.py"]
