"""Administration (``admin`` scope): model versions (reload, rollback, what is served),
catalogue and event ingestion, and the shop's merchandising rules."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.config import Settings
from shelfwise.ingest import IngestError, ingest_frame
from shelfwise.schema import Event, Item, User
from shelfwise.serving.deps import AUTH_RESPONSES, admin_access, answers, get_registry, get_search, get_settings, get_store
from shelfwise.serving.pii import pseudonymize
from shelfwise.serving.models import ModelNotFound, ModelRegistry, available_models
from shelfwise.serving.ranking import MerchandisingRules
from shelfwise.serving.search_service import SearchService
from shelfwise.serving.routers.events import ingest_error_detail, masked_event_rows
from shelfwise.store import Store

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(admin_access)], responses=AUTH_RESPONSES)


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model: str | None = Field(None, max_length=64, description="artifact name (sasrec, ...) or transitions / popularity; "
                                                                 "default: SHELFWISE_MODEL, else the newest trained model")
    version: str | None = Field(None, max_length=64, description="artifact version; default: latest")


class Switch(BaseModel):
    previous: dict | None
    current: dict


class ModelsOut(BaseModel):
    serving: dict
    previous: dict | None
    available: dict[str, dict]


@router.get("/models", response_model=ModelsOut)
def models(registry: ModelRegistry = Depends(get_registry), settings: Settings = Depends(get_settings)) -> ModelsOut:
    """The model served now, the one a rollback would return to, and every artifact version on disk."""
    prev = registry.previous
    return ModelsOut(serving=registry.current.info.to_dict(), previous=prev.info.to_dict() if prev else None,
                     available=available_models(settings))


@router.post("/reload", response_model=Switch, responses=answers(e404="no such model or version"))
async def reload(body: ReloadRequest | None = None, registry: ModelRegistry = Depends(get_registry)) -> Switch:
    """Load a model version and switch to it atomically: requests in flight finish on the old
    one, no request fails. Without a body: the default model's latest version (also refits a
    baseline on the newest events)."""
    body = body or ReloadRequest()
    try:
        old, new = await run_in_threadpool(registry.load, body.model, body.version)
    except ModelNotFound as e:
        raise HTTPException(404, str(e)) from None
    return Switch(previous=old.to_dict() if old else None, current=new.to_dict())


@router.post("/rollback", response_model=Switch, responses=answers(e409="no previous model to go back to"))
async def rollback(registry: ModelRegistry = Depends(get_registry)) -> Switch:
    """Serve the previous model again (the current one becomes the previous)."""
    try:
        old, new = await run_in_threadpool(registry.rollback)
    except ModelNotFound as e:
        raise HTTPException(409, str(e)) from None
    return Switch(previous=old.to_dict(), current=new.to_dict())


class IngestBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Item] = []
    users: list[User] = []
    events: list[Event] = []


class IngestOut(BaseModel):
    items: int = 0
    users: int = 0
    events: int = 0
    events_already_stored: int = 0


@router.post("/ingest", response_model=IngestOut, responses=answers(e413="too many records in one batch"))
def ingest(batch: IngestBatch, store: Store = Depends(get_store), registry: ModelRegistry = Depends(get_registry),
           settings: Settings = Depends(get_settings), search: SearchService = Depends(get_search)) -> IngestOut:
    """Upsert items and users and add events; each kind is one transaction (items first, so
    events may name new items). New stock levels and titles are served at once (and searchable by
    keyword; by meaning moments later); new items become recommendable at the next reload."""
    total = len(batch.items) + len(batch.users) + len(batch.events)
    if total == 0:
        raise HTTPException(422, "empty batch: send some of 'items', 'users', 'events'")
    if total > settings.max_batch:
        raise HTTPException(413, f"too many records in one batch: {total} (limit {settings.max_batch})")
    out = IngestOut()
    kind = "items"
    try:
        if batch.items:
            frame = pd.DataFrame([i.model_dump(mode="json") for i in batch.items])
            out.items = ingest_frame(store, "items", frame, source="POST /admin/ingest").stored
            registry.refresh_catalogue()
            search.upsert([i.item_id for i in batch.items])  # searchable by keyword at once
        kind = "users"
        if batch.users:
            rows = [{**u.model_dump(mode="json"), "user_id": pseudonymize(u.user_id, settings.pii_salt)} for u in batch.users]
            out.users = ingest_frame(store, "users", pd.DataFrame(rows), source="POST /admin/ingest").stored
        kind = "events"
        if batch.events:
            rows = masked_event_rows(batch.events, settings.pii_salt)
            report = ingest_frame(store, "events", pd.DataFrame(rows), source="POST /admin/ingest")
            out.events, out.events_already_stored = report.stored, report.already_stored
    except IngestError as e:
        raise HTTPException(422, ingest_error_detail(e, kind)) from None
    return out


@router.get("/rules", response_model=MerchandisingRules)
def get_rules(registry: ModelRegistry = Depends(get_registry)) -> MerchandisingRules:
    """The shop's pins, boosts and diversity setting."""
    return registry.current.raw_rules


@router.put("/rules", response_model=MerchandisingRules)
def put_rules(rules: MerchandisingRules, registry: ModelRegistry = Depends(get_registry)) -> MerchandisingRules:
    """Replace the merchandising rules; they apply from the next request and are kept in the home."""
    registry.set_rules(rules)
    return rules
