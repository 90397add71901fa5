"""Where the notebooks read and write when a path parameter is left at its default (None).

papermill runs a kernel in the caller's folder, JupyterLab and nbval in the notebook's, so a default such
as "../outputs/..." would land somewhere else for each of them (outside the repository for an instructor
who runs `papermill notebooks/01_data.ipynb out.ipynb` from its root). The defaults are therefore taken
from where this package lives: the repository's git-ignored `outputs/nbval/`, the same folder from any
working directory. `POSE_UTILS_OUTPUTS` moves that root (the browser test points it at a temporary
folder). A path given explicitly is used as given, relative to the kernel's working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

OUTPUTS_ENV = "POSE_UTILS_OUTPUTS"
# pose_course/paths.py -> the checkout holding pose_utils/ (an editable install, as `make` makes)
PACKAGE_PARENT = Path(__file__).resolve().parents[1]


def repository_root() -> Path | None:
    """The checkout this pose_utils comes from, or None when it is installed without one (a wheel)."""
    root = PACKAGE_PARENT
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def outputs_root() -> Path:
    """`$POSE_UTILS_OUTPUTS`, else the repository's `outputs/` (else `./outputs` without a checkout)."""
    given = os.environ.get(OUTPUTS_ENV)
    if given:
        return Path(given).expanduser().resolve()
    root = repository_root()
    return (root if root is not None else Path.cwd()) / "outputs"


def default_dir(value: str | os.PathLike | None, *parts: str) -> Path:
    """`value` as a Path, or for None the notebooks' default `outputs_root()/nbval/*parts`."""
    if value is not None and str(value) != "":
        return Path(value)
    return outputs_root().joinpath("nbval", *parts)


def notebook_path(value: str | os.PathLike | None, name: str) -> Path:
    """`value` as a Path, or for None the repository's own `notebooks/NAME`."""
    if value is not None and str(value) != "":
        return Path(value)
    root = repository_root()
    return (root / "notebooks" if root is not None else Path.cwd()) / name
