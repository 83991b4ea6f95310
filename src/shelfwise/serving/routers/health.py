"""Liveness and readiness."""

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException

from shelfwise.serving.deps import get_store
from shelfwise.store import Store

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(store: Store = Depends(get_store)) -> dict:
    """The store answers."""
    try:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as e:
        raise HTTPException(503, f"store unavailable: {type(e).__name__}") from e
    return {"status": "ready", **store.counts()}
