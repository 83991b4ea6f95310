"""The catalogue: list and look up items."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from shelfwise.serving.deps import AUTH_RESPONSES, answers, get_store, read_access
from shelfwise.store import Store, items

router = APIRouter(tags=["items"], dependencies=[Depends(read_access)], responses=AUTH_RESPONSES)


class ItemOut(BaseModel):
    id: str
    title: str
    description: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    currency: str | None = None
    image: str | None = None
    attributes: dict | None = None
    in_stock: bool


class ItemPage(BaseModel):
    results: list[ItemOut]
    total: int
    page: int
    per_page: int


def _item(row) -> ItemOut:
    data = dict(row._mapping)
    data["id"] = data.pop("item_id")
    return ItemOut(**{k: v for k, v in data.items() if k in ItemOut.model_fields})


@router.get("/items", response_model=ItemPage)
def list_items(
    category: str | None = Query(None, description="only items in this category or below it"),
    page: int = Query(1, ge=1, le=10_000),
    per_page: int = Query(24, ge=1, le=100),
    store: Store = Depends(get_store),
) -> ItemPage:
    """The catalogue, page by page, in item id order."""
    where = []
    if category:
        where.append(sa.or_(items.c.category == category, items.c.category.startswith(category + " > ", autoescape=True)))
    with store.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(items).where(*where)).scalar_one()
        rows = conn.execute(sa.select(items).where(*where).order_by(items.c.item_id).limit(per_page).offset((page - 1) * per_page))
        return ItemPage(results=[_item(r) for r in rows], total=total, page=page, per_page=per_page)


@router.get("/items/{item_id}", response_model=ItemOut, responses=answers(e404="no item with this id"))
def get_item(item_id: str, store: Store = Depends(get_store)) -> ItemOut:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(items).where(items.c.item_id == item_id)).first()
    if row is None:
        raise HTTPException(404, f"no item {item_id!r}")
    return _item(row)
