"""How check cells' outputs are compared (pose_utils.course.check_outputs): text exactly, numbers within
a tolerance, the same in `make check` and in the grader."""

from __future__ import annotations

import nbformat
import pytest

from pose_utils.course.check_outputs import (
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
