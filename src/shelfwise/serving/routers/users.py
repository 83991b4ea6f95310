"""Users, for a user picker in the storefront and dashboard."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from shelfwise.serving.deps import AUTH_RESPONSES, get_store, read_access
from shelfwise.store import Store, users

router = APIRouter(tags=["users"], dependencies=[Depends(read_access)], responses=AUTH_RESPONSES)


class UserOut(BaseModel):
    user_id: str
    created_at: int | None = None  # first seen, ms since the epoch


class UserPage(BaseModel):
    results: list[UserOut]
    total: int
    page: int
    per_page: int


@router.get("/users", response_model=UserPage)
def list_users(
    q: str | None = Query(None, max_length=128, description="only user ids starting with this"),
    page: int = Query(1, ge=1, le=10_000),
    per_page: int = Query(50, ge=1, le=500),
    store: Store = Depends(get_store),
) -> UserPage:
    """Users in id order, page by page."""
    where = [users.c.user_id.startswith(q, autoescape=True)] if q else []
    with store.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(users).where(*where)).scalar_one()
        rows = conn.execute(sa.select(users.c.user_id, users.c.created_at).where(*where).order_by(users.c.user_id)
                            .limit(per_page).offset((page - 1) * per_page))
        return UserPage(results=[UserOut(user_id=r.user_id, created_at=r.created_at) for r in rows], total=total, page=page,
                        per_page=per_page)
