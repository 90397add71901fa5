"""User-facing errors: one plain message, no traceback (the CLI prints it and exits non-zero)."""


# How an unwritten exercise of the student version says so: NotImplementedError("Exercise: write F in FILE
# (NOTEBOOK explains it)"), written by the release (`make release`). The CLI, the notebook runner and the
# tests turn it into one line instead of a traceback.
EXERCISE_PREFIX = "Exercise: "


def unwritten_exercise(exc: BaseException) -> str | None:
    """The message of an unwritten exercise's NotImplementedError, or None for any other exception."""
    if isinstance(exc, NotImplementedError) and str(exc).startswith(EXERCISE_PREFIX):
        return str(exc)
    return None


class PoseUtilsError(Exception):
    """A problem the user can fix (bad file, bad flag, bad value); the message says what and where."""

    exit_code = 2


class DataError(PoseUtilsError):
    """A dataset file is missing, corrupt, or breaks the data contract (see pose_utils.data)."""


class ConfigError(PoseUtilsError):
    """A configuration value or command-line flag is invalid."""


class TrainingError(PoseUtilsError):
    """Training cannot go on (for example the loss became non-finite)."""


def unwrap(exc: BaseException) -> PoseUtilsError | None:
    """The PoseUtilsError that TensorFlow wrapped into `exc`, or None.

    A DataError raised while tf.data reads a batch (inside `tf.numpy_function`) reaches the training
    loop as a `tf.errors.OpError` whose message holds "DataError: <message>" among TensorFlow's own
    lines; the user should see just that message.
    """
    if not type(exc).__module__.startswith("tensorflow"):
        return None
    return unwrap_text(str(exc))


def unwrap_text(text: str) -> PoseUtilsError | None:
    """The first "DataError: ..." (or ConfigError, TrainingError) line in an error's text, as that error.

    For `unwrap`, and for an error that arrives as text only (a notebook cell's, through papermill).
    """
    for cls in (DataError, ConfigError, TrainingError):
        marker = f"{cls.__name__}: "
        for line in text.splitlines():
            if marker in line:
                return cls(line.split(marker, 1)[1].strip())
    return None
