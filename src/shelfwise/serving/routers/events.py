"""Behaviour events from the shop, in real time.

A batch is validated, personal data in it is masked, and it is committed (all or nothing, by
the group-commit writer in ``serving.event_writer``) before the response: an acknowledged event
is stored, never lost, and shapes the very next recommendation for its user or session."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.config import Settings
from shelfwise.ingest import IngestError
from shelfwise.schema import Event
from shelfwise.serving.deps import AUTH_RESPONSES, answers, events_access, get_settings
from shelfwise.serving.pii import mask_text, pseudonymize

router = APIRouter(tags=["events"], responses=AUTH_RESPONSES)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Event] = Field(min_length=1, description="up to SHELFWISE_MAX_BATCH events (default 5000)")


class EventsStored(BaseModel):
    received: int
    stored: int
    already_stored: int  # events whose event_id was stored before (a re-sent batch)


def masked_event_rows(events: list[Event], salt: str) -> list[dict]:
    """The events as rows for ingestion, with personal data masked: free text gets placeholders,
    ids a stable pseudonym (so a shopper's history still hangs together)."""
    rows = []
    for e in events:
        row = e.model_dump(mode="json")
        row["query"] = mask_text(row["query"])
        row["user_id"] = pseudonymize(row["user_id"], salt)
        row["session_id"] = pseudonymize(row["session_id"], salt)
        rows.append(row)
    return rows


def _epoch(ts: datetime) -> float:
    return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp()  # naive = UTC, as in ingestion


def ingest_error_detail(e: IngestError, field_prefix: str) -> str:
    where = f"{field_prefix}[{e.error.line - 1}]" if e.error.line else field_prefix
    what = f".{e.error.field}" if e.error.field else ""
    more = f" (and {e.more} more invalid)" if e.more else ""
    return f"{where}{what}: {e.error.message}{more}; nothing from {field_prefix!r} was stored"


@router.post("/events", response_model=EventsStored, dependencies=[Depends(events_access)],
             responses=answers(e413="too many events in one batch"))
async def post_events(batch: EventBatch, request: Request, settings: Settings = Depends(get_settings)) -> EventsStored:
    """Store a batch of events (all or nothing) before answering. Re-sent events with a known
    ``event_id`` are skipped, so a client may safely retry. Needs a key with the ``events`` scope."""
    metrics = request.app.state.metrics
    received = time.time()
    n = len(batch.events)
    if n > settings.max_batch:
        raise HTTPException(413, f"too many events in one batch: {n} (limit {settings.max_batch})")
    metrics.events_received.inc(n)
    try:
        written = await request.app.state.event_writer.write(masked_event_rows(batch.events, settings.pii_salt))
    except IngestError as e:
        metrics.events_rejected.inc(n)
        raise HTTPException(422, ingest_error_detail(e, "events")) from None
    committed = time.time()
    metrics.events_stored.inc(written.stored)
    metrics.event_write.observe(committed - received)
    metrics.event_lag.observe(max(0.0, committed - max(_epoch(e.ts) for e in batch.events)))
    return EventsStored(received=n, stored=written.stored, already_stored=written.already_stored)
