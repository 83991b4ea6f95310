"""Training examples for the bi-encoder: (query, relevant item, hard negative items).

Positives are judged items at or above ``min_relevance``. Hard negatives are items a retriever
(BM25, or the current encoder) ranks high for the query but that are not judged relevant: judged
low first (certainly wrong), then unjudged retrieved items, skipping the very top of the
retrieved list where unjudged items are most often relevant but merely unlabelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd


@dataclass
class Example:
    query: str
    positive: str  # item id
    negatives: list[str] = field(default_factory=list)  # item ids


def positive_pairs(judgments: pd.DataFrame, min_relevance: float = 2.33) -> pd.DataFrame:
    return judgments[judgments["relevance"] >= min_relevance].reset_index(drop=True)


def mine_hard_negatives(
    judgments: pd.DataFrame,
    retrieve: Callable[[Sequence[str], int], list[list[str]]],
    per_query: int = 8,
    depth: int = 50,
    skip_top: int = 3,
    max_relevance: float = 2.0,
) -> dict[str, list[str]]:
    """query -> up to ``per_query`` negative item ids. ``retrieve(queries, depth)`` returns ranked
    item ids per query (keyword or semantic search)."""
    queries = list(dict.fromkeys(judgments["query"]))
    relevance = {(q, i): r for q, i, r in judgments[["query", "item_id", "relevance"]].itertuples(index=False)}
    judged_low = judgments[judgments["relevance"] <= max_relevance - 1e-9]
    low_by_query = judged_low.groupby("query")["item_id"].apply(list).to_dict()
    retrieved = retrieve(queries, depth)
    out = {}
    for query, ranked in zip(queries, retrieved):
        negatives = list(low_by_query.get(query, []))
        for rank, item_id in enumerate(ranked):
            if len(negatives) >= per_query:
                break
            judged = relevance.get((query, item_id))
            if judged is None and rank < skip_top:
                continue
            if (judged is None or judged <= max_relevance) and item_id not in negatives:
                negatives.append(item_id)
        out[query] = negatives[:per_query]
    return out


def build_examples(
    judgments: pd.DataFrame,
    negatives: dict[str, list[str]] | None = None,
    min_relevance: float = 2.33,
) -> list[Example]:
    """One example per (query, positive item); each carries the query's mined negatives."""
    negatives = negatives or {}
    return [
        Example(query, item_id, list(negatives.get(query, [])))
        for query, item_id in positive_pairs(judgments, min_relevance)[["query", "item_id"]].itertuples(index=False)
    ]


def merge_negatives(*sources: dict[str, list[str]]) -> dict[str, list[str]]:
    """Interleave negatives from several miners (e.g. BM25 and the model), without repeats."""
    out: dict[str, list[str]] = {}
    for query in dict.fromkeys(q for source in sources for q in source):
        lists = [source.get(query, []) for source in sources]
        merged = []
        for group in zip(*[lst + [None] * (max(map(len, lists)) - len(lst)) for lst in lists]):
            merged.extend(i for i in group if i is not None and i not in merged)
        out[query] = merged
    return out


def batches(examples: list[Example], batch_size: int, rng: np.random.Generator) -> list[list[Example]]:
    """Shuffled batches with at most one example per query: a second positive of the same query
    in a batch would be counted as a negative by the in-batch loss. The k-th positive of every
    query goes to round k; each round is shuffled and cut into batches on its own."""
    rounds: list[list[Example]] = []
    seen: dict[str, int] = {}
    for i in rng.permutation(len(examples)):
        example = examples[i]
        k = seen.get(example.query, 0)
        seen[example.query] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(example)
    out = [group[start : start + batch_size] for group in rounds for start in range(0, len(group), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]
