"""The data errors: all are ``ValueError``s whose message says how to fix the problem.

Missing files raise :class:`DataNotFoundError`, files that fail their check
:class:`CorruptDataError` and a failed download :class:`FetchError`.
"""

from __future__ import annotations

__all__ = ["DataError", "DataNotFoundError", "CorruptDataError", "FetchError"]


class DataError(ValueError):
    """Base class of the data errors; the message says how to fix the problem."""


class DataNotFoundError(DataError):
    """A dataset's files are not where they are looked for."""


class CorruptDataError(DataError):
    """A data file is malformed or fails its checksum."""


class FetchError(DataError):
    """Obtaining a dataset failed; nothing half-written was left behind."""
