"""The setup files agree with each other: environment.yml installs what pyproject.toml declares."""

import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_pip_requirements() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = {}
    for line in lines[start + 1 :]:
        match = re.match(r"\s+- ([^#]+?)\s*(#.*)?$", line)
        if not match:
            break
        assert match.group(2), f"environment.yml: pin {match.group(1)!r} needs a comment saying what needs it"
        if not match.group(1).startswith("-e"):
            reqs[_name(match.group(1))] = match.group(1).replace(" ", "")
    return reqs


def test_environment_yml_matches_pyproject():
    assert _environment_pip_requirements() == _pyproject_requirements()


def test_environment_yml_pins_a_python_that_pybullet_supports():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"- python=3\.1[01]\b", text)
    assert "-e ." in text


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_command_line_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "pose_utils", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("make-data", "check-data", "train", "evaluate", "run-notebooks", "benchmark"):
        assert command in out


def test_bad_flag_is_one_plain_message():
    result = subprocess.run(
        [sys.executable, "-m", "pose_utils", "train", "--data", "x", "--out", "y", "--epochs", "0"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "--epochs" in result.stderr and "positive integer" in result.stderr
    assert "Traceback" not in result.stderr
