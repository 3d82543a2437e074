"""The project's exceptions: each message is one line saying what is wrong and what to do."""


class WorkbookError(Exception):
    """Base class: the CLI prints these as one line instead of a traceback."""


class DataError(WorkbookError):
    """Prepared data is missing, corrupt, or not in the expected format."""


class ConfigError(WorkbookError, ValueError):
    """A hyperparameter or a name is invalid; raised before any work starts."""


class CheckpointError(WorkbookError):
    """A checkpoint is missing, truncated, or belongs to another network."""


class TrainingDiverged(WorkbookError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
