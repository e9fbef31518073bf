"""User-facing errors.

Anything the user can fix (bad data, bad config, bad path) raises an
:class:`EgoPressDiffError` subclass; the CLI prints its message on one line and
exits with code 2. Messages name the file, sequence and frame involved.
"""

from __future__ import annotations


class EgoPressDiffError(Exception):
    """Base class of errors caused by user input (exit code 2 on the CLI)."""

    exit_code = 2

    def one_line(self) -> str:
        return " ".join(str(self).split())


class DataError(EgoPressDiffError):
    """The dataset is missing, corrupt or inconsistent."""

    def __init__(self, message: str, *, path=None, sequence: str | None = None, frame: int | None = None):
        where = []
        if sequence is not None:
            where.append(f"sequence {sequence}")
        if frame is not None:
            where.append(f"frame {frame}")
        if path is not None:
            where.append(f"file {path}")
        full = message if not where else f"{message} ({', '.join(where)})"
        super().__init__(full)
        self.path = path
        self.sequence = sequence
        self.frame = frame


class ConfigError(EgoPressDiffError):
    """A configuration key or value is wrong."""


class CheckpointError(EgoPressDiffError):
    """A checkpoint or model folder is missing, incomplete or of another type."""


class MissingAssetError(EgoPressDiffError):
    """A licensed asset (MANO files, SVD weights) the user must provide is absent."""


class InputError(EgoPressDiffError, ValueError):
    """An array or argument given to a pipeline has the wrong shape, dtype or values."""
