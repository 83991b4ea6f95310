"""Errors that name what was wrong: the file, the line and the field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowError:
    line: int  # 1-based line of the file (row number for Parquet and API batches); 0 = the whole file
    field: str | None
    message: str
    raw: object = None  # the offending record as read, for the reject file

    def describe(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: field '{self.field}': {self.message}" if self.field else f"{where}: {self.message}"


class IngestError(ValueError):
    """Raised when a file is rejected; nothing from it was stored."""

    def __init__(self, source: str, error: RowError, more: int = 0):
        self.source = source
        self.error = error
        self.more = more
        suffix = f" (and {more} more invalid rows; --skip-invalid keeps the good ones)" if more else ""
        super().__init__(error.describe(source) + suffix)
