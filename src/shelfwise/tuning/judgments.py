"""Relevance judgments (Home Depot format: query, product_id, relevance 1..3), judgments read
from the shop's own logs, and splits by query.

Splitting by query (never by row) keeps every judgment of a query on one side, so validation
measures how the model does on queries it has not seen.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd


def read_judgments(path: Path | str) -> pd.DataFrame:
    """Columns query (stripped, lower-cased as the scorer does), item_id (str), relevance (float)."""
    path = Path(path)
    frame = pd.read_csv(path, dtype={"product_id": str, "item_id": str, "query": str}, keep_default_na=False)
    if "item_id" not in frame.columns and "product_id" in frame.columns:
        frame = frame.rename(columns={"product_id": "item_id"})
    missing = {"query", "item_id", "relevance"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; found {list(frame.columns)}")
    relevance = pd.to_numeric(frame["relevance"], errors="coerce")
    bad = relevance.isna()
    if bad.any():
        line = int(frame.index[bad][0]) + 2
        raise ValueError(f"{path}, line {line}: relevance {frame['relevance'][bad].iloc[0]!r} is not a number")
    frame = frame.assign(query=frame["query"].str.strip().str.lower(), relevance=relevance.astype(float))
    return frame[frame["query"] != ""][["query", "item_id", "relevance"]].reset_index(drop=True)


def query_gains(judgments: pd.DataFrame) -> dict[str, dict[str, float]]:
    """query -> {item id: gain}, gain = relevance - 1 (Home Depot's 1..3 becomes 0..2; the scorer's
    definition), the highest where an item is judged twice for a query."""
    gains: dict[str, dict[str, float]] = {}
    for query, item_id, relevance in judgments[["query", "item_id", "relevance"]].itertuples(index=False):
        known = gains.setdefault(query, {})
        known[str(item_id)] = max(known.get(str(item_id), 0.0), float(relevance) - 1.0)
    return gains


# The shop's logs on the judgments' scale: an item shown after a search and skipped is
# irrelevant (1); one the shopper viewed or clicked is relevant (2.5, a positive for the
# bi-encoder's default threshold of 2.33); a cart and a purchase say more (2.75, 3).
LOG_RELEVANCE = {0: 1.0, 1: 2.5, 2: 2.75, 3: 3.0}


def judgments_from_logs(store) -> pd.DataFrame:
    """Judgments from the store's events: each search, the items acted on or skipped after it
    in the same session (``shelfwise.datasets.store_data.query_item_pairs``), graded as above."""
    from shelfwise.datasets.store_data import query_item_pairs

    pairs = query_item_pairs(store)
    relevance = pairs["grade"].map(LOG_RELEVANCE).astype(float)
    return pairs.assign(relevance=relevance)[["query", "item_id", "relevance"]].reset_index(drop=True)


def query_bucket(query: str, salt: str = "shelfwise") -> float:
    """A stable number in [0, 1) per query: the same split on every machine and run."""
    digest = hashlib.sha1(f"{salt}|{query}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_query(judgments: pd.DataFrame, fractions: dict[str, float], salt: str = "shelfwise") -> dict[str, pd.DataFrame]:
    """Split judgments into named parts by query, e.g. ``{"train": 0.7, "valid": 0.1, "test": 0.2}``."""
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"fractions must add up to 1, got {total}")
    buckets = judgments["query"].map(lambda q: query_bucket(q, salt))
    parts, low = {}, 0.0
    for i, (name, fraction) in enumerate(fractions.items()):
        high = 1.0 if i == len(fractions) - 1 else low + fraction
        parts[name] = judgments[(buckets >= low) & (buckets < high)].reset_index(drop=True)
        low = high
    return parts


# The split every search benchmark and fine-tuning run reports on: train/validate on the first two,
# report on "test" (held-out dev queries).
HOMEDEPOT_SPLIT = {"train": 0.7, "valid": 0.1, "test": 0.2}
