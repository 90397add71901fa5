"""One notebook through papermill: its parameters, its execution, and where its kernel's stderr goes.

The runner (`runner.py`), the sweep of notebook 05 (`experiments.py`) and `nbval.refresh_checked_outputs`
all execute notebooks through `execute_notebook`, so each behaves the same way: the kernel runs in the
notebook's folder (as nbval and JupyterLab run it), the executed copy appears under its name only when
papermill is done, and a failing cell is one message naming the notebook and the cell.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from pose_course.cells import is_parameters
from pose_utils.errors import ConfigError, PoseUtilsError, unwrap_text

KERNEL_NAME = "python3"


def notebook_parameters(path: str | os.PathLike) -> dict:
    """The names and default texts of the notebook's `parameters` cell: {name: "default source"}.

    A notebook without a cell tagged `parameters` is a ConfigError (papermill could not inject values).
    """
    import nbformat
    import papermill

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: notebook not found")
    nb = nbformat.read(path, as_version=4)
    if not any(is_parameters(c) for c in nb.cells):
        raise ConfigError(f"{path}: no cell is tagged 'parameters'")
    return {name: p["default"] for name, p in papermill.inspect_notebook(str(path)).items()}


def current_umask() -> int:
    """This process's umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def execute_notebook(notebook: Path, output: Path, parameters: dict, progress: bool = True,
                     cwd: Path | None = None) -> Path:
    """Run one notebook with papermill into `output` (written under a temporary name, then renamed).

    The kernel runs in `cwd` (default: the notebook's folder, as nbval and JupyterLab do). A failing cell
    raises PoseUtilsError naming the notebook, the cell and the error; the executed copy with the error
    is still moved to `output` so it can be opened.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".tmp.ipynb", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it private; an executed notebook is ordinary
    try:
        papermill.execute_notebook(
            str(notebook), str(tmp), parameters=parameters, kernel_name=KERNEL_NAME, language="python",
            progress_bar=progress, cwd=str(cwd or notebook.parent),
        )
    except PapermillExecutionError as e:
        os.replace(tmp, output)
        first_line = next((line for line in str(e.source).splitlines() if line.strip()), "").strip()
        ename, evalue = e.ename, (e.evalue or "").strip()
        inner = unwrap_text(evalue)  # a DataError that TensorFlow wrapped (tf.data read it mid-training)
        if inner is not None and ename != type(inner).__name__:
            ename, evalue = type(inner).__name__, str(inner)
        raise PoseUtilsError(
            f"{notebook.name}: cell #{e.cell_index + 1} (In [{e.exec_count}], starting {first_line!r}) "
            f"raised {ename}: {evalue}; the executed copy is {output}"
        ) from None
    except PoseUtilsError:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    except Exception as e:  # kernel died, timeout, bad notebook file: name the notebook
        if tmp.is_file() and tmp.stat().st_size:
            os.replace(tmp, output)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise PoseUtilsError(f"{notebook.name}: could not be executed ({type(e).__name__}: {e})") from None
    except BaseException:  # Ctrl-C: leave no temporary file behind
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.replace(tmp, output)
    return output


@contextlib.contextmanager
def stderr_to(path: Path, keep_sys_stderr: bool = False):
    """Point file descriptor 2 of this process (which processes it starts inherit) at `path` for a while,
    and the kernel log of this environment's kernels (`lab.KERNEL_LOG_ENV`) there too.

    keep_sys_stderr: Python's own sys.stderr (papermill's progress bar) keeps writing where fd 2 pointed
    before, so only the started processes' messages go to the file.
    """
    from pose_course.lab import KERNEL_LOG_ENV

    previous = os.environ.get(KERNEL_LOG_ENV)
    if previous != "-":
        os.environ[KERNEL_LOG_ENV] = str(Path(path).resolve())
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(2)
    try:
        with contextlib.ExitStack() as stack:
            with open(path, "ab") as log:
                os.dup2(log.fileno(), 2)
            if keep_sys_stderr:
                terminal = stack.enter_context(open(os.dup(saved), "w", buffering=1, errors="replace"))
                stack.enter_context(contextlib.redirect_stderr(terminal))
            yield
    finally:
        with contextlib.suppress(Exception):
            sys.__stderr__.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if previous is None:
            os.environ.pop(KERNEL_LOG_ENV, None)
        else:
            os.environ[KERNEL_LOG_ENV] = previous
