"""Hybrid search: fuse the keyword and the semantic ranking into one.

Two fusions, chosen by name from :data:`FUSIONS`:

* ``rrf`` (reciprocal-rank fusion): score = sum_i w_i / (k + rank_i). Uses ranks only, so the two
  retrievers' incomparable score scales do not matter; the usual default.
* ``weighted``: score = sum_i w_i * normalised_score_i, each list's scores min-max scaled to [0, 1]
  (missing = 0). Uses how much better one hit is than the next, at the price of tuning weights.
"""

from __future__ import annotations

from typing import Callable, Sequence

from shelfwise.search.keyword import Filters, Hit, KeywordIndex, SearchPage
from shelfwise.search.semantic import SemanticSearch


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hit]], weights: Sequence[float], k: float = 60.0) -> list[Hit]:
    scores: dict[str, float] = {}
    for hits, weight in zip(rankings, weights):
        for rank, hit in enumerate(hits, start=1):
            scores[hit.item_id] = scores.get(hit.item_id, 0.0) + weight / (k + rank)
    return [Hit(i, s) for i, s in sorted(scores.items(), key=lambda kv: -kv[1])]


def weighted_score_fusion(rankings: Sequence[Sequence[Hit]], weights: Sequence[float], k: float = 60.0) -> list[Hit]:
    scores: dict[str, float] = {}
    for hits, weight in zip(rankings, weights):
        if not hits:
            continue
        values = [h.score for h in hits]
        low, high = min(values), max(values)
        span = high - low
        for hit in hits:
            # A list whose scores are all equal carries no preference: every hit gets the full weight.
            normalised = (hit.score - low) / span if span > 0 else 1.0
            scores[hit.item_id] = scores.get(hit.item_id, 0.0) + weight * normalised
    return [Hit(i, s) for i, s in sorted(scores.items(), key=lambda kv: -kv[1])]


FUSIONS: dict[str, Callable[..., list[Hit]]] = {
    "rrf": reciprocal_rank_fusion,
    "weighted": weighted_score_fusion,
}


class HybridSearch:
    """Keyword + semantic, fused. ``weights`` are (keyword, semantic); ``candidates`` is how deep each
    retriever is read before fusing."""

    def __init__(
        self,
        keyword: KeywordIndex,
        semantic: SemanticSearch,
        fusion: str = "rrf",
        weights: tuple[float, float] = (1.0, 1.0),
        rrf_k: float = 60.0,
        candidates: int = 100,
    ):
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {sorted(FUSIONS)}")
        self.keyword = keyword
        self.semantic = semantic
        self.fusion = fusion
        self.weights = tuple(weights)
        self.rrf_k = rrf_k
        self.candidates = candidates

    def fuse(self, keyword_hits: Sequence[Hit], semantic_hits: Sequence[Hit]) -> list[Hit]:
        return FUSIONS[self.fusion]([keyword_hits, semantic_hits], self.weights, k=self.rrf_k)

    def search(self, text: str, top: int = 10, offset: int = 0, filters: Filters | None = None) -> SearchPage:
        depth = max(self.candidates, top + offset)
        keyword_page = self.keyword.search(text, top=depth, filters=filters)
        semantic_hits = self.semantic.search(text, top=depth).hits
        if filters is not None:
            allowed = self.keyword.matching([h.item_id for h in semantic_hits], filters)
            semantic_hits = [h for h in semantic_hits if h.item_id in allowed]
        fused = self.fuse(keyword_page.hits, semantic_hits)
        return SearchPage(hits=fused[offset : offset + top], total=len(fused))

    def search_many(self, texts: Sequence[str], top: int = 10) -> list[SearchPage]:
        """Batch queries (one encoder pass for all), no filters: for offline runs and evaluation."""
        depth = max(self.candidates, top)
        semantic_pages = self.semantic.search_many(texts, top=depth)
        out = []
        for text, semantic_page in zip(texts, semantic_pages):
            fused = self.fuse(self.keyword.search(text, top=depth).hits, semantic_page.hits)
            out.append(SearchPage(hits=fused[:top], total=len(fused)))
        return out
