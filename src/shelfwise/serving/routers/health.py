"""Liveness and readiness."""

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException

from shelfwise.serving.deps import get_registry, get_search, get_store
from shelfwise.serving.models import ModelRegistry
from shelfwise.serving.search_service import SearchService
from shelfwise.store import Store

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(store: Store = Depends(get_store), registry: ModelRegistry = Depends(get_registry),
           search: SearchService = Depends(get_search)) -> dict:
    """The store answers and a model is loaded; reports the model version served and the search
    indexes (keyword search is ready at start; semantic and photo indexes build in the background)."""
    try:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as e:
        raise HTTPException(503, f"store unavailable: {type(e).__name__}") from e
    if not registry.ready:
        raise HTTPException(503, "no model loaded yet")
    info = registry.current.info
    return {"status": "ready", **store.counts(), "model": {"name": info.name, "version": info.version},
            "search": search.status()}
