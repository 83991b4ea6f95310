"""What a search request asks and what it gets back: the request, the item cards results are
made of, the results page, and the shopper's affinity used for personal re-ranking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Personal re-ranking multiplies an item's relevance by 1 + these weights times the share of the
# shopper's recent history in the item's category / brand: a nudge among relevant items, never
# enough to lift an irrelevant one over a clearly better match.
CATEGORY_WEIGHT = 0.5
BRAND_WEIGHT = 0.25


@dataclass(frozen=True, slots=True)
class ItemCard:
    """What a search result shows of an item, and the index tokens of its text (matched terms)."""

    id: str
    title: str
    category: str | None
    brand: str | None
    price: float | None
    image: str | None
    in_stock: bool
    popularity: float
    terms: frozenset


def _value(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def item_cards(frame: pd.DataFrame, popularity: dict[str, float], analyze) -> dict[str, ItemCard]:
    cards = {}
    for row in frame.to_dict("records"):
        text = " ".join(str(row[c]) for c in ("title", "brand", "category", "description") if _value(row.get(c)) is not None)
        price = _value(row.get("price"))
        item_id = str(row["item_id"])
        cards[item_id] = ItemCard(item_id, str(row["title"]), _value(row.get("category")), _value(row.get("brand")),
                                  None if price is None else float(price), _value(row.get("image")),
                                  bool(_value(row.get("in_stock"))), float(popularity.get(item_id, 0.0)),
                                  frozenset(analyze(text)))
    return cards


@dataclass(frozen=True)
class SearchRequest:
    q: str
    category: str | None = None  # this category or any below it ("Electronics > TV & Video")
    brand: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None
    sort: str = "relevance"
    page: int = 1
    per_page: int = 24
    mode: str = "hybrid"
    history: tuple[str, ...] = ()  # the shopper's recent items, oldest first: personal re-ranking

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True)
class Found:
    card: ItemCard
    score: float
    matched_terms: list[str]
    retrievers: tuple[str, ...]  # which retrievers found it: keyword, semantic, photo
    personal_boost: float  # 1 = not re-ranked for the shopper


@dataclass
class SearchOutcome:
    query: str
    corrected: str | None
    results: list[Found]
    facets: dict[str, dict[str, int]]
    total: int
    page: int
    per_page: int
    mode: str


@dataclass(frozen=True)
class Affinity:
    """Shares of the shopper's recent history per category and brand (newer events weigh more)."""

    categories: dict[str, float]
    brands: dict[str, float]

    def boost(self, card: ItemCard) -> float:
        return 1.0 + CATEGORY_WEIGHT * self.categories.get(card.category, 0.0) + BRAND_WEIGHT * self.brands.get(card.brand, 0.0)
