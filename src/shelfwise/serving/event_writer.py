"""Group commit for POST /events.

Every request hands its (validated, masked) rows to one writer thread and waits. The writer
takes whatever has queued up meanwhile and stores it with one ``ingest_frame`` call - one
validation pass and one transaction for many requests - then answers each request. A request
is answered only after its events are committed: an acknowledged event is never lost, and the
next recommendation for its user or session already sees it.

Ingestion costs a fixed ~10 ms per call (validation of whole columns, the transaction) and
little per row, so grouping is what lets the API take thousands of events per second.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from shelfwise.ingest import IngestError, ingest_frame
from shelfwise.store import Store, events

log = logging.getLogger("shelfwise.events")
_STOP = object()


@dataclass
class Written:
    stored: int
    already_stored: int  # re-sent events (an event_id stored before): skipped


@dataclass
class _Request:
    rows: list[dict]
    future: Future = field(default_factory=Future)


class EventWriter:
    def __init__(self, store: Store, max_group_rows: int = 50_000, source: str = "POST /events"):
        self.store = store
        self.max_group_rows = max_group_rows
        self.source = source
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.groups_written = 0  # for tests and curiosity: how many transactions so far

    def submit(self, rows: list[dict]) -> Future:
        """Queue rows (event dicts, as in the events file format); the future gives ``Written``
        or raises ``IngestError`` (nothing of these rows stored)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shelfwise-event-writer", daemon=True)
                self._thread.start()
        request = _Request(rows)
        self._queue.put(request)
        return request.future

    async def write(self, rows: list[dict]) -> Written:
        return await asyncio.wrap_future(self.submit(rows))

    def close(self, timeout: float = 30.0) -> None:
        """Store everything queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            group, size = [first], len(first.rows)
            while size < self.max_group_rows:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                group.append(more)
                size += len(more.rows)
            self._write(group)

    def _write(self, group: list[_Request]) -> None:
        try:
            results = self._store_together(group)
        except IngestError as e:
            if len(group) == 1:
                group[0].future.set_exception(e)
                return
            # One request's bad rows must not fail the others: store each on its own.
            for request in group:
                self._write([request])
            return
        except Exception as e:  # noqa: BLE001 - the database is down, say: every waiting request learns it
            log.error("storing events failed", exc_info=True, extra={"fields": {"requests": len(group)}})
            for request in group:
                request.future.set_exception(e)
            return
        self.groups_written += 1
        for request, result in zip(group, results):
            request.future.set_result(result)

    def _store_together(self, group: list[_Request]) -> list[Written]:
        rows = [row for request in group for row in request.rows]
        already = self._already_stored(group) if len(group) > 1 else None
        report = ingest_frame(self.store, "events", pd.DataFrame(rows), source=self.source)
        if already is None:
            return [Written(report.stored, report.already_stored)]
        return [Written(len(request.rows) - a, a) for request, a in zip(group, already)]

    def _already_stored(self, group: list[_Request]) -> list[int]:
        """Per request, how many of its events carry an event_id stored before or earlier in the
        group (the store skips those), so that each request gets its own counts."""
        ids = list({row["event_id"] for request in group for row in request.rows if row.get("event_id")})
        existing: set[str] = set()
        with self.store.engine.connect() as conn:
            for start in range(0, len(ids), 10_000):
                chunk = ids[start : start + 10_000]
                existing.update(conn.execute(sa.select(events.c.event_id).where(events.c.event_id.in_(chunk))).scalars())
        counts = []
        for request in group:
            n = 0
            for row in request.rows:
                event_id = row.get("event_id")
                if event_id:
                    if event_id in existing:
                        n += 1
                    else:
                        existing.add(event_id)
            counts.append(n)
        return counts
