"""Recommendations for a user or an anonymous session, and similar items.

The history is read from the store at request time and scored with the loaded model, so an
event posted to /events shapes the next answer with no retraining.

The endpoints are ``async`` and run on the event loop, without a hop to the thread pool: their
work is two indexed lookups and some array maths (~1 ms), and the hop cost a third of the CPU
of a cached answer. With a remote PostgreSQL, run several workers (``shelfwise serve --workers``)."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shelfwise.serving.deps import AUTH_RESPONSES, Recommending, answers, get_recommending, get_service, read_access
from shelfwise.serving.recommend import RecommenderService

router = APIRouter(tags=["recommendations"], dependencies=[Depends(read_access)], responses=AUTH_RESPONSES)

# Annotated aliases, not shared default objects: FastAPI binds a parameter object to one name.
Id = Annotated[str, Path(min_length=1, max_length=128)]
K = Annotated[int, Query(ge=1, le=100, description="how many items")]
ExcludeHistory = Annotated[bool, Query(description="also leave out items already in the history")]


class ItemRef(BaseModel):
    item_id: str
    title: str | None = None


class RecommendedItem(BaseModel):
    item_id: str
    title: str | None = None
    category: str | None = None
    price: float | None = None
    image: str | None = None
    score: float
    reason: Literal["pinned", "history", "popular", "co-occurrence", "same category"]
    because: list[ItemRef] = []  # the history items that drove this pick
    pinned: bool = False
    boosted: bool = False


class ModelRef(BaseModel):
    name: str
    version: str


class RecommendationList(BaseModel):
    user_id: str | None = None
    session_id: str | None = None
    model: ModelRef
    history_length: int
    items: list[RecommendedItem]


class SimilarItems(BaseModel):
    item_id: str
    model: ModelRef
    items: list[RecommendedItem]


# The answers are built as plain dicts and sent as they are: validating them through the
# response models cost more than computing them (the models still document the shape, and
# tests/test_api_schema.py checks the answers against it).
def _item(service: RecommenderService, item_id: str, score: float, reason: str, because=(), pinned=False, boosted=False) -> dict:
    c = service.catalogue
    i = service.index_of[item_id]
    price = c.prices[i]
    return {
        "item_id": item_id, "title": c.titles[i], "category": c.categories[i], "price": None if np.isnan(price) else float(price),
        "image": c.images[i], "score": score, "reason": reason, "pinned": pinned, "boosted": boosted,
        "because": [{"item_id": b, "title": c.titles[service.index_of[b]]} for b in because],
    }


def _answer(service: RecommenderService, recs, **fields) -> JSONResponse:
    return JSONResponse({**fields, "model": _model(service),
                         "items": [_item(service, r.item_id, r.score, r.reason, r.because, r.pinned, r.boosted) for r in recs]})


def _model(service: RecommenderService) -> dict:
    return {"name": service.info.name, "version": service.info.version}


@router.get("/recommendations/{user_id}", response_model=RecommendationList)
async def recommend_for_user(user_id: Id, k: K = 10, exclude_history: ExcludeHistory = False,
                             serving: Recommending = Depends(get_recommending)) -> JSONResponse:
    """The next items for a registered user, from their newest events. Purchased and
    out-of-stock items are left out; the shop's pins, boosts and diversity apply; each item
    names the history items behind it. A user without history gets the shop's bestsellers."""
    history = serving.histories.read("user_id", user_id)
    recs = serving.service.recommend(history.items, history.purchased, k, exclude_history)
    return _answer(serving.service, recs, user_id=user_id, history_length=len(history.items))


@router.get("/sessions/{session_id}/recommendations", response_model=RecommendationList)
async def recommend_for_session(session_id: Id, k: K = 10, exclude_history: ExcludeHistory = False,
                                serving: Recommending = Depends(get_recommending)) -> JSONResponse:
    """The next items for an anonymous session, from the session's events so far."""
    history = serving.histories.read("session_id", session_id)
    recs = serving.service.recommend(history.items, history.purchased, k, exclude_history)
    return _answer(serving.service, recs, session_id=session_id, history_length=len(history.items))


@router.get("/items/{item_id}/similar", response_model=SimilarItems, responses=answers(e404="no item with this id in the catalogue the model serves"))
async def similar_items(item_id: Id, k: K = 10, service: RecommenderService = Depends(get_service)) -> JSONResponse:
    """Items shoppers view or buy next to this one (co-occurrence in the shop's sequences),
    topped up with popular items of its category; only items in stock."""
    if item_id not in service.index_of:
        raise HTTPException(404, f"no item {item_id!r} in the catalogue the model serves")
    similar = service.similar(item_id, k)
    return JSONResponse({"item_id": item_id, "model": _model(service), "items": [_item(service, i, s, r) for i, s, r in similar]})
