"""A run's checkpoints: `checkpoints/ckpt-E.*` (tf.train.Checkpoint: model variables, optimizer state,
epoch; nothing pickled) and `checkpoint.json`, the pointer to the last complete one, written after it.

`tf.train.CheckpointManager` was weighed against `Checkpoints`: its index file (`checkpoint`) cannot carry
the history, so a resume would need a second file written after it and a kill between the two would
leave them disagreeing; one pointer holding both is simpler.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pose_utils.errors import DataError
from pose_utils.fileio import read_json, write_json
from pose_utils.training.runfolder import CHECKPOINT_FILE, CHECKPOINTS_DIR


def _copy_keras_variables_in_place() -> None:
    """Let TensorFlow's asynchronous checkpoint copy Keras 3 variables more than once.

    Its copy to host memory calls each trackable's `_copy_trackable_to_cpu` inside a tf.function; Keras 3's
    variable makes a new tf.Variable there on every call, which a tf.function allows on the first call
    only (the second asynchronous write of a run fails: "tf.function only supports singleton
    tf.Variables"). The copy of the wrapped tf.Variable is the copy of the Keras variable: the same value,
    kept up to date by TensorFlow's own in-place copy."""
    from keras.src.backend.tensorflow.core import Variable

    if getattr(Variable._copy_trackable_to_cpu, "in_place", False):
        return

    def copy_in_place(self, object_map):
        self.value._copy_trackable_to_cpu(object_map)
        object_map[self] = object_map[self.value]

    copy_in_place.in_place = True
    Variable._copy_trackable_to_cpu = copy_in_place



class Checkpoints:
    """checkpoints/ckpt-E.* plus checkpoint.json pointing at the last complete one (written after it).

    background=True: `save` copies the variables and returns; TensorFlow's asynchronous checkpointing
    writes them while the next epoch trains, and a thread of ours then writes the pointer (and whatever
    `after` writes, history.json) once the files are complete. So the order on disk stays checkpoint,
    pointer, history, and a kill before the write ends leaves the previous epoch's state. `wait` joins
    the pending write (and raises its error); `train` calls it before it writes anything else and before
    it reports an error. The engine writes in the background on one replica only (the chief of several
    workers writes in step with them)."""

    def __init__(self, run_dir: Path, checkpoint, chief: bool, background: bool = False):
        self.run_dir, self.checkpoint, self.chief = run_dir, checkpoint, chief
        self.pointer = run_dir / CHECKPOINT_FILE
        self.background = background and chief
        self._pending = None
        self._error: BaseException | None = None
        if self.background:
            _copy_keras_variables_in_place()

    def restore(self) -> dict | None:
        """Load the last good checkpoint; return its pointer record (epoch, history) or None."""
        if not self.pointer.is_file():
            return None
        record = read_json(self.pointer)
        prefix = self.run_dir / record["prefix"]
        try:
            status = self.checkpoint.read(str(prefix))
            status.assert_existing_objects_matched()
            status.expect_partial()  # an asynchronous write also stores its save counter, unused here
        except (ValueError, AssertionError, OSError) as e:  # tf raises NotFoundError (an OSError) too
            raise DataError(f"{prefix}: cannot restore the checkpoint ({e})") from None
        return record

    def save(self, epoch: int, history: dict, after=None) -> None:
        """Checkpoint epoch `epoch`, then the pointer (with `history`), then call `after()`."""
        import shutil
        import tempfile
        import threading

        import tensorflow as tf

        history = {k: list(v) for k, v in history.items()}  # as it is now: the caller goes on appending
        if not self.chief:  # every worker must take part in writing; only the chief keeps it
            tmp = Path(tempfile.mkdtemp(prefix="pose_utils_worker_ckpt_"))
            self.checkpoint.write(str(tmp / "ckpt"))
            shutil.rmtree(tmp, ignore_errors=True)
            return
        prefix = f"{CHECKPOINTS_DIR}/ckpt-{epoch}"

        def finish():
            write_json(self.pointer, {"epoch": epoch, "prefix": prefix, "history": history})
            self.remove_stale(keep=prefix)
            if after is not None:
                after()

        if not self.background:
            self.checkpoint.write(str(self.run_dir / prefix))
            finish()
            return
        self.wait()
        options = tf.train.CheckpointOptions(experimental_enable_async_checkpoint=True)
        self.checkpoint.write(str(self.run_dir / prefix), options=options)

        def complete():
            try:
                self.checkpoint.sync()
                finish()
            except BaseException as e:  # raised in the training thread by `wait`
                self._error = e

        self._pending = threading.Thread(target=complete, name="checkpoint-writer", daemon=True)
        self._pending.start()

    def wait(self) -> None:
        """Block until the checkpoint being written in the background is complete; raise its error."""
        if self._pending is not None:
            self._pending.join()
            self._pending = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def remove_stale(self, keep: str | None) -> None:
        """Delete checkpoint files other than `keep` (older epochs, or ones a kill left half-written)."""
        folder = self.run_dir / CHECKPOINTS_DIR
        if not self.chief or not folder.is_dir():
            return
        keep_name = Path(keep).name if keep else None
        for path in folder.iterdir():
            if path.name.split(".")[0] != keep_name:
                with contextlib.suppress(OSError):
                    path.unlink()
