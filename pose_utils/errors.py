"""User-facing errors: one plain message, no traceback (the CLI prints it and exits non-zero)."""


class PoseUtilsError(Exception):
    """A problem the user can fix (bad file, bad flag, bad value); the message says what and where."""

    exit_code = 2


class DataError(PoseUtilsError):
    """A dataset file is missing, corrupt, or breaks the data contract (see pose_utils.data)."""


class ConfigError(PoseUtilsError):
    """A configuration value or command-line flag is invalid."""


class TrainingError(PoseUtilsError):
    """Training cannot go on (for example the loss became non-finite)."""
