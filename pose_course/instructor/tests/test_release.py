"""The student version (pose_course.instructor.release): what it leaves out, what it keeps, and that filling
the exercises back in gives this repository's code again."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from pose_course.cells import is_checked
from pose_course.instructor import release as rel
from pose_utils.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "student"
    return out, rel.release(ROOT, out)


def _solution_regions(text):
    lines = text.splitlines(keepends=True)
    return [(a, b, lines) for a, b in rel._regions(lines, rel.BEGIN_SOLUTION, rel.END_SOLUTION, "x")]


def _normalised(line: str) -> str:
    return " ".join(line.split())


def _instructor_solution_lines() -> set[str]:
    """Every line of every solution region, whitespace normalised, but imports, comments and lines under
    10 characters (`return x`, `)`): none of them may appear in any file a student gets, tests and
    benchmarks included, and neither in a notebook's prose nor in its outputs."""
    found = set()
    for name in rel.tracked_files(ROOT):
        if rel.instructor_only(name) or not name.endswith(".py"):
            continue
        lines = (ROOT / name).read_text().splitlines()
        for a, b, _ in _solution_regions((ROOT / name).read_text()):
            for line in map(_normalised, lines[a:b]):
                if len(line) >= 10 and not line.startswith(("#", "import ", "from ")):
                    found.add(line)
    return found


def test_the_release_holds_no_solution_and_no_hidden_check(released):
    out, result = released
    assert len(result["exercises"]) >= 8
    solution_lines = _instructor_solution_lines()
    assert len(solution_lines) >= 15, solution_lines  # the search has lines to look for
    hidden_sources, hidden_ids = [], []
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(nb_path, as_version=4).cells:
            if "hidden" in cell.metadata.get("tags", []):
                hidden_sources.append(cell.source)
                hidden_ids.append(cell.metadata["nbgrader"]["grade_id"])
    assert hidden_ids, "the instructor's notebooks hold hidden checks"
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = path.relative_to(out).as_posix()
        assert not rel.instructor_only(name)
        text = path.read_text(errors="replace")
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                       "BEGIN INSTRUCTOR ONLY", "END INSTRUCTOR ONLY"):
            assert marker not in text, f"{name} holds {marker!r}"
        lines = {_normalised(ln) for ln in text.splitlines()}
        if path.suffix == ".ipynb":
            cells = json.loads(text)["cells"]
            shown = ["".join(cell["source"]) for cell in cells] + [
                "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
                for cell in cells for out in cell.get("outputs", [])]
            lines = {_normalised(ln) for part in shown for ln in part.splitlines()}
        leaked = solution_lines & lines
        assert not leaked, f"{name} holds solution lines: {sorted(leaked)[:3]}"
        for grade_id in hidden_ids:
            assert grade_id not in text, f"{name} names the hidden check {grade_id!r}"
        assert not any(src.strip() and src.strip() in text for src in hidden_sources), name
    assert not (out / "pose_course" / "instructor").exists()
    assert "release" not in (out / "pose_course" / "cli.py").read_text().split("COMMANDS")[1].split("}")[0]
    # nothing a student gets reaches for the folder the release leaves out
    for path in out.rglob("*.py"):
        assert "pose_course.instructor" not in path.read_text(), path


def test_the_release_keeps_the_public_checks_and_their_reference_outputs(released):
    out, _ = released
    checks = 0
    for nb_path in sorted((out / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        source_nb = nbformat.read(ROOT / "notebooks" / nb_path.name, as_version=4)
        original = {c.get("id"): c for c in source_nb.cells}
        for cell in nbformat.read(nb_path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            if "check" in cell.metadata.get("tags", []):
                checks += 1
                assert cell.outputs and cell.outputs == original[cell.get("id")].outputs
                assert cell.metadata["nbgrader"]["points"] > 0
                assert cell.execution_count is not None  # else nbval: "Unrun reference cell has outputs"
            elif is_checked(cell):  # compared by nbval without points: the student's make check/test too
                assert cell.outputs and cell.outputs == original[cell.get("id")].outputs
                assert cell.execution_count is not None
            else:
                assert cell.outputs == [] and cell.execution_count is None, \
                    f"{nb_path.name}: an output left in cell {cell.get('id')}"
        # the paired Markdown copy is the released notebook's
        text = (out / "notebooks" / "text" / f"{nb_path.stem}.md").read_text()
        assert "hidden" not in re.findall(r"tags=\[[^\]]*\]", text).__str__()
    assert checks >= 6
    answers = [c for c in nbformat.read(out / "notebooks" / "05_experiments.ipynb", as_version=4).cells
               if "answer" in c.metadata.get("tags", [])]
    assert len(answers) == 2 and all(c.source == rel.ANSWER_PLACEHOLDER for c in answers)


def test_every_exercise_raises_one_line_naming_its_function_file_and_notebook(released):
    out, result = released
    for ex in result["exercises"]:
        text = (out / ex.path).read_text()
        assert "raise NotImplementedError(\n" in text and json.dumps(ex.message) in text
        assert ex.message.startswith("Exercise: write ") and ex.path in ex.message
        assert ex.notebook.startswith("notebooks/") and (ROOT / ex.notebook).is_file()
    readme = (out / "README.md").read_text()
    assert "Student version" in readme.split("\n\n")[1] and "make check" in readme


def test_filling_the_exercises_back_gives_this_repositorys_code(released):
    """The round trip: each stub replaced by the instructor's region is the instructor's file again."""
    out, result = released
    for name in sorted({ex.path for ex in result["exercises"]}):
        original = rel.strip_hidden((ROOT / name).read_text(), name)
        filled = rel.fill_solutions((out / name).read_text(), original, name)
        assert filled == _without_markers(original), name


def _without_markers(text: str) -> str:
    return "".join(ln for ln in text.splitlines(keepends=True)
                   if not rel.BEGIN_SOLUTION.match(ln) and not rel.END_SOLUTION.match(ln))


def test_bad_releases_are_plain_errors(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="exists already"):
        rel.release(ROOT, tmp_path / "taken")
    with pytest.raises(ConfigError, match="not ignored by git"):
        rel.release(ROOT, ROOT / "pose_utils" / "student_copy")
    with pytest.raises(DataError, match="never ends"):
        rel.clear_solutions("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "f.py")
    with pytest.raises(DataError, match="never began"):
        rel.strip_hidden("x = 1\n### END HIDDEN TESTS\n", "g.py")
    with pytest.raises(DataError, match="never ends"):
        rel.strip_hidden("### BEGIN INSTRUCTOR ONLY\nx = 1\n", "g.py")
    mentioned = "a\n# ### BEGIN INSTRUCTOR ONLY\nb\n"  # a marker inside a line is text
    assert rel.strip_hidden(mentioned, "h") == mentioned
    assert rel.strip_hidden("a\n### BEGIN INSTRUCTOR ONLY\nb\n### END INSTRUCTOR ONLY\nc\n", "h") == "a\nc\n"
    with pytest.raises(DataError, match="not a git checkout"):
        rel.tracked_files(tmp_path)
    assert not (ROOT / "pose_utils" / "student_copy").exists()


def test_a_stub_keeps_the_regions_indentation_and_names_the_enclosing_function():
    text, (ex,) = rel.clear_solutions(
        "class A:\n    def area(self, r):\n        r2 = r * r\n"
        "        ### BEGIN SOLUTION (notebooks/x.ipynb)\n"
        "        return 3.14 * r2\n        ### END SOLUTION\n",
        "pkg/geo.py")
    assert ex == rel.Exercise("pkg/geo.py", "area", "notebooks/x.ipynb")
    assert text.splitlines()[3:] == ["        # YOUR CODE HERE", "        raise NotImplementedError(",
                                     f"            {json.dumps(ex.message)})"]
    compile(text, "geo.py", "exec")
