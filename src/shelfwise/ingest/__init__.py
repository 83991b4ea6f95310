"""Ingestion: files (JSON Lines, CSV, Parquet) and API batches become validated rows in the store."""

from shelfwise.ingest.errors import IngestError, RowError
from shelfwise.ingest.loader import IngestReport, ingest_file, ingest_frame

__all__ = ["IngestError", "RowError", "IngestReport", "ingest_file", "ingest_frame"]
