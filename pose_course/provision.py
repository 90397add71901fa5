"""What a notebook makes sure of before its real work: the setup cell's version check, a dataset to read
and a run folder to write or to evaluate.

`setup()` is every notebook's setup cell; `ensure_data` renders the embedded dataset's tiny preset where
a default data folder holds none (so a fresh clone runs every notebook as it is); `prepare_run_dir`
clears a previous run before notebook 03 trains; `ensure_run` lets notebook 04 run on its own by
training a quick run when its run folder holds no model.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pose_course.paths import default_dir
from pose_utils.errors import ConfigError, DataError, PoseUtilsError
from pose_utils.training.runfolder import RunFolder

# The oldest versions the notebooks run on: TensorFlow with Keras 3, and what the figures need.
MIN_VERSIONS = {"tensorflow": "2.16", "keras": "3.0", "numpy": "1.26", "matplotlib": "3.8"}


def setup(check: bool = True) -> str:
    """The setup cell's version check: one line of versions; PoseUtilsError if one is too old.

    Imports TensorFlow so that its start-up happens here, not in a later cell.
    """
    import importlib

    from packaging.version import InvalidVersion, Version

    import pose_utils

    versions = {"python": sys.version.split()[0], "pose_utils": pose_utils.__version__}
    for name in MIN_VERSIONS:
        versions[name] = importlib.import_module(name).__version__
    if check:
        old = []
        for name, low in MIN_VERSIONS.items():
            try:
                too_old = Version(versions[name]).release < Version(low).release
            except InvalidVersion:  # a local build with a version packaging cannot read: let it run
                too_old = False
            if too_old:
                old.append(f"{name} {versions[name]} (need >= {low})")
        if old:
            raise PoseUtilsError(f"too old for these notebooks: {', '.join(old)}; run `make lab` to use the "
                                 "project's environment")
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def has_dataset(data_dir: str | os.PathLike) -> bool:
    """True when DATA_DIR holds both splits (HDF5 or the course's .npy files)."""
    from pose_utils.data import validate_dir

    try:
        validate_dir(data_dir)
    except PoseUtilsError:
        return False
    return True


def ensure_data(data_dir: str | os.PathLike | None, preset: str = "tiny", seed: int = 0,
                generate: bool = True, progress: bool = True) -> Path:
    """DATA_DIR, after rendering the embedded dataset's `preset` into it if it holds no dataset yet.

    None: the notebooks' default, the repository's `outputs/nbval/data/PRESET` (`paths.default_dir`).

    The data is rendered into a temporary folder beside DATA_DIR and renamed into place, so an
    interrupted run never leaves half a dataset. generate=False: DataError instead of rendering.
    """
    from pose_course.datagen import make_config, make_data
    from pose_course.execute import current_umask

    data_dir = default_dir(data_dir, "data", preset)
    if has_dataset(data_dir):
        return data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        # Let the data module say precisely what is wrong with an existing folder.
        from pose_utils.data import validate_dir

        validate_dir(data_dir)
    if not generate:
        raise DataError(f"{data_dir}: no dataset there; render one with "
                        f"`python -m pose_utils make-data --preset {preset} --out {data_dir}`")
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.", dir=data_dir.parent))
    try:
        make_data(make_config(tmp, preset=preset, format="h5", seed=seed), progress=progress)
        _flush_c_stdio()  # pybullet's C printf ("build time") belongs to this cell's output, not a later one
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it private; a dataset folder is ordinary
        if data_dir.exists():
            data_dir.rmdir()  # empty (checked above)
        os.replace(tmp, data_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return data_dir


def _flush_c_stdio() -> None:
    """Flush the C library's stdout buffers (C extensions print through them, not through Python)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def prepare_run_dir(run_dir: str | os.PathLike, overwrite: bool = True) -> Path:
    """Make RUN_DIR ready for a fresh training run.

    A previous run folder there (it has config.json) is deleted when `overwrite`, else ConfigError; a
    non-empty folder that is not a run folder is never deleted (ConfigError).
    """
    run_dir = Path(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not RunFolder(run_dir).is_run():
            raise ConfigError(f"{run_dir} is not empty and is not a run folder; choose another run_dir")
        if not overwrite:
            raise ConfigError(f"{run_dir} already holds a run; set overwrite=True to replace it or "
                              "resume=True to continue it")
        # Rename first so that a crash half-way through deleting never leaves a half run under the name.
        doomed = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.old.", dir=run_dir.parent))
        os.replace(run_dir, doomed / run_dir.name)
        shutil.rmtree(doomed, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def ensure_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike, train_if_missing: bool = True,
               **config) -> Path:
    """RUN_DIR, after training a quick run there (TrainConfig(**config)) if it holds no trained model.

    Lets notebook 04 run on its own (nbval, a fresh clone); train_if_missing=False makes a missing run a
    DataError, which is what the runner wants after 03.
    """
    from pose_utils.training import TrainConfig, train

    run_dir = Path(run_dir)
    if RunFolder(run_dir).has_model():
        return run_dir
    if not train_if_missing:
        raise DataError(f"{run_dir}: no trained model (model.keras) there; run notebook 03 first or train "
                        f"with `python -m pose_utils train --data {data_dir} --out {run_dir}`")
    prepare_run_dir(run_dir, overwrite=True)
    train(data_dir, run_dir, TrainConfig(**config), progress=True)
    return run_dir
