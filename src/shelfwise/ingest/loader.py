"""Load validated batches into the store, one transaction per source.

Without ``skip_invalid`` the first invalid record stops the load and the transaction is rolled
back: nothing from that file is stored. With it, good rows are stored and bad ones are written,
with their reasons, to a reject file (JSON Lines)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from shelfwise.ingest.errors import IngestError, RowError
from shelfwise.ingest.readers import RawBatch, detect_format, read_batches
from shelfwise.ingest.validate import validate
from shelfwise.store import Store

KINDS = ("items", "users", "events")
BYTES_PER_EVENT = 60  # a rough size of one event in a file, to tell a bulk load from a small one


@dataclass
class IngestReport:
    kind: str
    source: str
    read: int = 0
    stored: int = 0
    rejected: int = 0
    already_stored: int = 0  # events whose event_id was stored before: skipped, not rejected
    rejects_path: str | None = None

    def summary(self) -> str:
        text = f"{self.source}: {self.read} {self.kind} read, {self.stored} stored, {self.rejected} rejected"
        if self.already_stored:
            text += f", {self.already_stored} already stored"
        if self.rejects_path and self.rejected:
            text += f" (reasons in {self.rejects_path})"
        return text


def ingest_file(
    store: Store,
    kind: str,
    path: str | Path,
    fmt: str | None = None,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    batch_size: int = 50_000,
    progress: bool = False,
) -> IngestReport:
    """Ingest one file of items, users or events. Raises ``IngestError`` naming file, line and field."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if not path.is_file():
        raise IngestError(str(path), RowError(0, None, "no such file"))
    rejects = Path(rejects_path) if rejects_path else path.with_name(path.name + ".rejects.jsonl")
    try:
        fmt = detect_format(path, fmt)
        batches = _validated(read_batches(path, fmt, batch_size, progress), kind)  # streamed: checked as they are read
        return _load(store, kind, batches, str(path), skip_invalid, rejects, expected_rows=path.stat().st_size // BYTES_PER_EVENT)
    except ValueError as e:
        if isinstance(e, IngestError):
            raise
        raise IngestError(str(path), RowError(0, None, str(e).removeprefix(f"{path}: "))) from e


def ingest_frame(
    store: Store,
    kind: str,
    frame: pd.DataFrame,
    source: str = "request",
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
) -> IngestReport:
    """Ingest records already in memory (an API batch, a public dataset); errors name the row,
    counted from 1."""
    batch = RawBatch(frame.reset_index(drop=True), np.arange(1, len(frame) + 1, dtype=np.int64))
    # Checked before the transaction begins: the store's write lock is held for the writes only
    # (several API processes share one SQLite file).
    checked = list(_validated([batch], kind))
    return _load(store, kind, checked, source, skip_invalid, Path(rejects_path) if rejects_path else None)


def _validated(batches: Iterable[RawBatch], kind: str) -> Iterator[tuple[RawBatch, pd.DataFrame, list[RowError]]]:
    for batch in batches:
        rows, errors = validate(batch.frame, batch.lines, kind) if len(batch.frame) else (batch.frame, [])
        yield batch, rows, batch.errors + errors


def _load(store: Store, kind: str, batches: Iterable[tuple[RawBatch, pd.DataFrame, list[RowError]]], source: str, skip_invalid: bool, rejects: Path | None, expected_rows: int = 0) -> IngestReport:
    report = IngestReport(kind, source)
    # items, users: id -> line (one file may not name an id twice); events: the catalogue ids seen
    seen_ids: dict[str, int] = {}
    registered_users: set[str] = set()
    reject_file = None
    try:
        with store.transaction() as conn, store.bulk_events(conn, expected_rows if kind == "events" else 0):
            for batch, rows, errors in batches:
                report.read += len(batch.frame) + len(batch.errors)
                lines = pd.Series(batch.lines, index=batch.frame.index)
                rows, more = _check_against_store(store, conn, kind, rows, lines, seen_ids)
                errors += more
                if errors:
                    errors.sort(key=lambda e: e.line)
                    if not skip_invalid:
                        bad_lines = {e.line for e in errors}
                        raise IngestError(source, errors[0], more=len(bad_lines) - 1)
                    if reject_file is None and rejects is not None:
                        reject_file = open(rejects, "w", encoding="utf-8")
                        report.rejects_path = str(rejects)
                    _write_rejects(reject_file, errors)
                    report.rejected += len({e.line for e in errors})
                stored, skipped = _store(store, conn, kind, rows, registered_users)
                report.stored += stored
                report.already_stored += skipped
    finally:
        if reject_file is not None:
            reject_file.close()
    return report


def _check_against_store(store, conn: Connection, kind: str, rows: pd.DataFrame, lines: pd.Series, seen_ids: dict) -> tuple[pd.DataFrame, list[RowError]]:
    errors: list[RowError] = []
    if rows.empty:
        return rows, errors
    bad = np.zeros(len(rows), dtype=bool)
    if kind == "events":
        unique = rows["item_id"].dropna().unique()
        new = np.array([i for i in unique if i not in seen_ids], dtype=object)
        if len(new):  # ask the store only about ids this load has not met yet
            seen_ids.update(dict.fromkeys(new[store.existing_item_ids(conn, new)], 0))
        known = pd.Series([i in seen_ids for i in unique], index=unique, dtype=bool)
        unknown = rows["item_id"].map(known).eq(False).to_numpy()  # a missing item id maps to NaN: not unknown
        for i in np.flatnonzero(unknown):
            row = rows.iloc[i]
            errors.append(RowError(int(lines[rows.index[i]]), "item_id", f"unknown item {row['item_id']!r} (ingest the catalogue first)", row.to_dict()))
        bad |= unknown
    else:
        key = "item_id" if kind == "items" else "user_id"
        ids = rows[key]
        first_line = lines[rows.index]
        dup_in_batch = ids.duplicated(keep="first").to_numpy()
        dup_before = ids.isin(seen_ids.keys()).to_numpy()
        for i in np.flatnonzero(dup_in_batch | dup_before):
            value = ids.iloc[i]
            earlier = seen_ids.get(value) or int(first_line[ids == value].iloc[0])
            errors.append(RowError(int(first_line.iloc[i]), key, f"duplicate id {value!r} (first on line {earlier})", rows.iloc[i].to_dict()))
        bad |= dup_in_batch | dup_before
        for value, line in zip(ids[~bad], first_line[~bad]):
            seen_ids.setdefault(value, int(line))
    return rows[~bad], errors


def _records(rows: pd.DataFrame) -> list[dict]:
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def _store(store: Store, conn: Connection, kind: str, rows: pd.DataFrame, registered: set[str]) -> tuple[int, int]:
    """Write valid rows; returns (stored, skipped as already stored). ``registered``: the users
    this load has already made sure of, so each is written once, not once per batch."""
    if rows.empty:
        return 0, 0
    if kind == "items":
        return store.upsert_items(conn, _records(rows)), 0
    if kind == "users":
        return store.upsert_users(conn, _records(rows)), 0
    stored = store.insert_events(conn, rows)
    actors = rows.loc[rows["user_id"].notna(), ["user_id", "ts"]].astype({"user_id": str, "ts": "int64"})
    first_seen = actors.groupby("user_id", sort=False)["ts"].min().reset_index().rename(columns={"ts": "created_at"})
    first_seen = first_seen[np.array([u not in registered for u in first_seen["user_id"].tolist()], dtype=bool)]
    first_seen["attributes"] = None
    registered.update(first_seen["user_id"])
    store.upsert_users(conn, _records(first_seen), replace=False)
    return stored, len(rows) - stored


def _write_rejects(file, errors: list[RowError]) -> None:
    if file is None:
        return
    for e in errors:
        record = asdict(e)
        if isinstance(record["raw"], bytes):
            record["raw"] = record["raw"].decode("utf-8", "backslashreplace")
        file.write(json.dumps(record, default=str) + "\n")
