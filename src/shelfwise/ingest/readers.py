"""Stream records out of JSON Lines, CSV and Parquet files in batches, keeping the line number of
every record so that errors can name it. Parse failures become row errors, not exceptions, so a
caller can either stop at the first one or keep the good rows."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from shelfwise.ingest.errors import RowError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Undecodable bytes survive decoding as lone surrogates in this range, so each can be traced
# to its record and field instead of failing somewhere inside a read-ahead buffer.
BAD_BYTES = re.compile("[\udc80-\udcff]")


def has_bad_bytes(text: str) -> bool:
    return BAD_BYTES.search(text) is not None


@dataclass
class RawBatch:
    frame: pd.DataFrame  # one row per record, columns as named in the file, raw values
    lines: np.ndarray  # the line (CSV, JSON Lines) or row (Parquet) each record starts on, 1-based
    errors: list[RowError] = field(default_factory=list)  # records that could not be parsed at all


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in set(FORMATS.values()):
            raise ValueError(f"unknown format {fmt!r}; use one of jsonl, csv, parquet")
        return fmt
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: cannot tell the format from the extension {path.suffix!r}; pass --format jsonl|csv|parquet") from None


def read_batches(path: Path, fmt: str, batch_size: int = 50_000, progress: bool = False) -> Iterator[RawBatch]:
    """Yield the file's records in batches. Raises ValueError for a file that holds no records."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    readers = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}
    seen = 0
    for batch in readers[fmt](path, batch_size, progress):
        seen += len(batch.frame) + len(batch.errors)
        yield batch
    if seen == 0:
        raise ValueError(f"{path}: the file holds no records")


def _progress(path: Path, progress: bool):
    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"reading {path.name}", disable=not progress, leave=False)


def _jsonl(path: Path, batch_size: int, progress: bool) -> Iterator[RawBatch]:
    records, lines, errors = [], [], []
    with open(path, "rb") as f, _progress(path, progress) as bar:
        for number, raw in enumerate(f, start=1):
            bar.update(len(raw))
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                errors.append(RowError(number, None, f"not valid UTF-8 (byte {e.start})", raw))
            except json.JSONDecodeError as e:
                cut = "" if raw.endswith(b"\n") else " (the line is cut off)"
                errors.append(RowError(number, None, f"malformed JSON: {e.msg} at column {e.colno}{cut}", raw))
            else:
                if isinstance(record, dict):
                    records.append(record)
                    lines.append(number)
                else:
                    errors.append(RowError(number, None, f"expected a JSON object, found {type(record).__name__}", raw))
            if len(records) + len(errors) >= batch_size:
                yield RawBatch(pd.DataFrame.from_records(records), np.array(lines, dtype=np.int64), errors)
                records, lines, errors = [], [], []
    if records or errors:
        yield RawBatch(pd.DataFrame.from_records(records), np.array(lines, dtype=np.int64), errors)


FAST_BLOCK = 8 << 20  # bytes of CSV handed to pyarrow at once


def _csv(path: Path, batch_size: int, progress: bool) -> Iterator[RawBatch]:
    """Blocks of plain lines (no quotes, no blank lines, no carriage returns: one record per
    line, so line numbers stay exact) go through pyarrow's parser; from the first block that is
    not plain, the csv module reads the rest, which also finds and names every malformed row."""
    size = path.stat().st_size
    with open(path, "rb") as raw, tqdm.wrapattr(
        raw, "read", total=size, desc=f"reading {path.name}", disable=not progress, leave=False
    ) as counted:
        first = counted.readline()
        header_text = first.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
        try:
            header = [h.strip() for h in next(csv.reader([header_text], strict=True))]
        except StopIteration:
            return
        except csv.Error as e:
            yield RawBatch(pd.DataFrame(), np.zeros(0, np.int64), [RowError(1, None, f"malformed CSV header: {e}")])
            return
        problem = _header_problem(header) if first.endswith(b"\n") else "the header line is cut off"
        if problem:
            yield RawBatch(pd.DataFrame(), np.zeros(0, np.int64), [RowError(1, None, problem)])
            return
        line, consumed = 2, len(first)
        pending = b""
        while block := counted.read(FAST_BLOCK):
            block = pending + block
            cut = block.rfind(b"\n") + 1
            chunk, pending = block[:cut], block[cut:]
            table = _plain_table(chunk, header)
            if table is None:
                break
            for offset in range(0, table.num_rows, batch_size):
                frame = table.slice(offset, batch_size).to_pandas()
                yield RawBatch(frame, np.arange(line + offset, line + offset + len(frame), dtype=np.int64))
            line += table.num_rows
            consumed += len(chunk)
        counted.seek(consumed)
        text = io.TextIOWrapper(counted, encoding="utf-8", errors="surrogateescape", newline="")
        yield from _csv_rows(text, header, line, batch_size)


def _plain_table(chunk: bytes, header: list[str]):
    """The chunk parsed by pyarrow, or None when it is not plain or pyarrow refuses it."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not chunk or chunk.startswith(b"\n") or b"\"" in chunk or b"\r" in chunk or b"\n\n" in chunk:
        return None
    try:
        return pacsv.read_csv(
            io.BytesIO(chunk),
            read_options=pacsv.ReadOptions(column_names=header, block_size=len(chunk) + 1),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a row with too few or too many fields, bad UTF-8
        return None


def _csv_rows(text, header: list[str], first_line: int, batch_size: int) -> Iterator[RawBatch]:
    reader = csv.reader(text, strict=True)
    rows, lines, errors = [], [], []
    start = first_line
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            errors.append(RowError(start, None, f"malformed CSV: {e} (the file may be cut off)"))
            break
        if len(row) == len(header):
            rows.append(row)
            lines.append(start)
        elif row:
            cut = " (the line is cut off)" if len(row) < len(header) else ""
            errors.append(RowError(start, None, f"expected {len(header)} fields, found {len(row)}{cut}", dict(zip(header, row))))
        start = first_line + reader.line_num
        if len(rows) + len(errors) >= batch_size:
            yield _csv_batch(rows, header, lines, errors)
            rows, lines, errors = [], [], []
    if rows or errors:
        yield _csv_batch(rows, header, lines, errors)


def _header_problem(header: list[str]) -> str | None:
    if any(h == "" for h in header):
        return "the header has an empty column name"
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        return f"the header names {', '.join(dupes)} more than once"
    if any(has_bad_bytes(h) for h in header):
        return "the header is not valid UTF-8"
    return None


def _csv_batch(rows, header, lines, errors) -> RawBatch:
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    return RawBatch(frame, np.array(lines, dtype=np.int64), errors)


def _parquet(path: Path, batch_size: int, progress: bool) -> Iterator[RawBatch]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise ValueError(f"{path}: not a readable Parquet file ({e})") from e
    row = 1
    with tqdm(total=file.metadata.num_rows, unit="rows", desc=f"reading {path.name}", disable=not progress, leave=False) as bar:
        for batch in file.iter_batches(batch_size=batch_size):
            frame = batch.to_pandas()
            yield RawBatch(frame, np.arange(row, row + len(frame), dtype=np.int64))
            row += len(frame)
            bar.update(len(frame))
