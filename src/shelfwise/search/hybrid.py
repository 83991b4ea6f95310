"""Hybrid search: fuse the keyword and the semantic ranking into one.

Two fusions, chosen by name from :data:`FUSIONS`:

* ``rrf`` (reciprocal-rank fusion): score = sum_i w_i / (k + rank_i). Uses ranks only, so the two
  retrievers' incomparable score scales do not matter; the usual default.
* ``weighted`` (the default, 1 : 0.5): score = sum_i w_i * normalised_score_i, each list's scores
  min-max scaled to [0, 1] (missing = 0). Uses how much better one hit is than the next, at the
  price of tuning weights.

A learned fusion (``learned_fusion.py``) can then reorder the fused top from richer evidence.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

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


class Retrieved(NamedTuple):
    """One query's candidates from both retrievers, and the vector the semantic ones were searched
    with (the learned fusion reads it; encoding the query twice would double the encoder's cost)."""

    keyword: list[Hit]
    semantic: list[Hit]
    vector: np.ndarray


class HybridSearch:
    """Keyword + semantic, fused. ``weights`` are (keyword, semantic); ``candidates`` is how deep each
    retriever is read before fusing. The semantic side reads the query with the keyword index's
    spelling corrections. With ``learned`` (a :class:`~shelfwise.search.learned_fusion.LearnedFusion`;
    it needs ``texts``, item id -> the item's text), the fused top is reordered by it."""

    def __init__(
        self,
        keyword: KeywordIndex,
        semantic: SemanticSearch,
        fusion: str = "weighted",
        weights: tuple[float, float] = (1.0, 0.5),
        rrf_k: float = 60.0,
        candidates: int = 100,
        learned=None,
        texts: Mapping[str, str] | None = None,
    ):
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {sorted(FUSIONS)}")
        if learned is not None and texts is None:
            raise ValueError("a learned fusion reads the items' text: pass texts (item id -> text)")
        self.keyword = keyword
        self.semantic = semantic
        self.fusion = fusion
        self.weights = tuple(weights)
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.learned = learned
        self.texts = texts
        self._item_tokens: dict[str, list[str]] = {}

    def query_tokens(self, text: str) -> list[str]:
        return self.keyword.analyze(self.keyword.corrected(text))

    def item_tokens(self, item_id: str) -> list[str]:
        tokens = self._item_tokens.get(item_id)
        if tokens is None:
            tokens = self._item_tokens[item_id] = self.keyword.analyze((self.texts or {}).get(item_id, ""))
        return tokens

    def forget_tokens(self, item_ids) -> None:
        """Drop the cached tokens of items whose text changed."""
        for item_id in item_ids:
            self._item_tokens.pop(item_id, None)

    def fuse(self, keyword_hits: Sequence[Hit], semantic_hits: Sequence[Hit], query: str | None = None,
             query_vector: np.ndarray | None = None) -> list[Hit]:
        """The fused ranking; with a learned fusion and the ``query``, its top reordered by the learned model,
        which reads ``query_vector`` (the vector the semantic hits were searched with; encoded here if not given)."""
        fused = FUSIONS[self.fusion]([keyword_hits, semantic_hits], self.weights, k=self.rrf_k)
        if self.learned is None or query is None:
            return fused
        if query_vector is None:
            query_vector = self.semantic.encode_queries([self.keyword.corrected(query)])
        head = [h.item_id for h in fused[: self.learned.depth]]
        return self.learned.rerank(fused, self.candidate_features(query, keyword_hits, semantic_hits, head, query_vector))

    def candidate_features(self, query: str, keyword_hits: Sequence[Hit], semantic_hits: Sequence[Hit], candidates: Sequence[str],
                           query_vector: np.ndarray):
        """The learned fusion's features of ``candidates`` for ``query`` (see learned_fusion.FEATURES)."""
        from shelfwise.search.learned_fusion import candidate_features

        return candidate_features(self.query_tokens(query), keyword_hits, semantic_hits, candidates, self.item_tokens,
                                  np.asarray(query_vector).reshape(-1), self.semantic.index.vectors(candidates))

    def search(self, text: str, top: int = 10, offset: int = 0, filters: Filters | None = None) -> SearchPage:
        depth = max(self.candidates, top + offset)
        keyword_page = self.keyword.search(text, top=depth, filters=filters)
        vector = self.semantic.encode_queries([self.keyword.corrected(text)])
        semantic_hits = self.semantic.search_vectors(vector, top=depth)[0].hits
        if filters is not None:
            allowed = self.keyword.matching([h.item_id for h in semantic_hits], filters)
            semantic_hits = [h for h in semantic_hits if h.item_id in allowed]
        fused = self.fuse(keyword_page.hits, semantic_hits, text, vector)
        return SearchPage(hits=fused[offset : offset + top], total=len(fused))

    def retrieve_many(self, texts: Sequence[str], depth: int) -> list[Retrieved]:
        """Both retrievers' hits per query, ``depth`` of each, with the query's vector (one encoder pass for all)."""
        vectors = self.semantic.encode_queries([self.keyword.corrected(t) for t in texts])
        pages = self.semantic.search_vectors(vectors, top=depth)
        return [Retrieved(self.keyword.search(text, top=depth).hits, page.hits, vector)
                for text, page, vector in zip(texts, pages, vectors)]

    def search_many(self, texts: Sequence[str], top: int = 10) -> list[SearchPage]:
        """Batch queries, no filters: for offline runs and evaluation."""
        out = []
        for text, found in zip(texts, self.retrieve_many(texts, max(self.candidates, top))):
            fused = self.fuse(found.keyword, found.semantic, text, found.vector)
            out.append(SearchPage(hits=fused[:top], total=len(fused)))
        return out
