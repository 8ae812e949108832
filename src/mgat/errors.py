"""Error types raised at the library's public boundaries.

Every message says what was expected, what was found, and what to do about it.
"""


class MgatError(Exception):
    """Base class of every error the library raises on purpose."""


class DataError(MgatError, ValueError):
    """A dataset, an import source or a feature file is malformed."""


class ConfigError(MgatError, ValueError):
    """An unknown option, a value out of range or an inconsistent configuration."""


class CheckpointError(MgatError):
    """A saved run or model is missing, truncated, tampered with or incompatible."""


class StorageError(MgatError):
    """A file or directory could not be written: permission, read-only, disk full."""


class DivergedError(MgatError):
    """The training loss became NaN or infinite."""


class UnknownIdError(MgatError, KeyError):
    """A user or item id that the dataset or model does not know."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""
