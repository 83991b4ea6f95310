"""Validation NDCG@10 for early stopping, cheap enough to run every few dozen training steps.

Encoding the whole catalogue at every check would take minutes on a CPU, so validation ranks a
fixed pool instead: every judged item of the validation queries plus each query's BM25 top
``pool_depth``, all mixed together as one small catalogue. Gains follow the benchmark scorer
(gain = relevance - 1, unjudged = 0), so a better pool NDCG tracks a better open-retrieval NDCG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from shelfwise.tuning.judgments import query_gains


def ndcg_at_k(ranked: Sequence[str], gains: dict[str, float], k: int = 10) -> float:
    dcg = sum(gains.get(item, 0.0) / np.log2(i + 2) for i, item in enumerate(ranked[:k]))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return float(dcg / idcg) if idcg > 0 else 0.0


@dataclass
class ValidationPool:
    queries: list[str]
    gains: dict[str, dict[str, float]]
    item_ids: list[str]
    item_texts: list[str]

    @classmethod
    def build(
        cls,
        judgments: pd.DataFrame,
        items: pd.DataFrame,
        retrieve: Callable[[Sequence[str], int], list[list[str]]],
        max_queries: int = 200,
        pool_depth: int = 30,
        seed: int = 0,
    ) -> "ValidationPool":
        from shelfwise.search.semantic import item_texts

        queries = list(dict.fromkeys(judgments["query"]))
        if len(queries) > max_queries:
            rng = np.random.default_rng(seed)
            queries = [queries[i] for i in sorted(rng.choice(len(queries), max_queries, replace=False))]
        chosen = judgments[judgments["query"].isin(set(queries))]
        gains = query_gains(chosen)
        pool = list(dict.fromkeys(chosen["item_id"].tolist() + [i for ranked in retrieve(queries, pool_depth) for i in ranked]))
        known = items.assign(item_id=items["item_id"].astype(str)).set_index("item_id")
        pool = [i for i in pool if i in known.index]
        texts = item_texts(known.loc[pool].reset_index())
        return cls(queries=queries, gains=gains, item_ids=pool, item_texts=texts)

    def ndcg(self, encode: Callable[[list[str]], np.ndarray], k: int = 10) -> float:
        """Mean NDCG@k when ``encode`` (texts -> unit vectors) ranks the pool for every query."""
        item_vectors = encode(self.item_texts)
        query_vectors = encode(self.queries)
        scores = query_vectors @ item_vectors.T
        top = np.argsort(-scores, axis=1)[:, :k]
        return float(np.mean([
            ndcg_at_k([self.item_ids[j] for j in row], self.gains.get(q, {}), k) for q, row in zip(self.queries, top)
        ]))
