"""Training data built from the store with SQL and whole-column pandas/numpy work:
per-user sequences, per-session sequences and search query–item pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from shelfwise.datasets.sequences import Sequences
from shelfwise.store import Store, events, items

ITEM_EVENTS = ("view", "click", "add_to_cart", "purchase")
# How strongly an action after a search says "this item answers the query".
GRADES = {"impression": 0, "view": 1, "click": 1, "add_to_cart": 2, "purchase": 3}


def item_vocabulary(store: Store) -> np.ndarray:
    """Every catalogue item id, sorted: item index i + 1 is vocabulary[i], so items that have no
    events yet still have an index (the text-aware models can recommend them)."""
    return store.read_frame(sa.select(items.c.item_id).order_by(items.c.item_id))["item_id"].to_numpy(dtype=object)


def catalogue_texts(store: Store, item_ids) -> list[str]:
    """The text of each of ``item_ids`` as search embeds it (title, brand, category, description; see
    ``search.semantic.item_texts``): what a text-aware recommender reads. An id not in the catalogue reads as ""."""
    from shelfwise.search.semantic import item_texts

    frame = store.items_frame()
    by_id = dict(zip(frame["item_id"].astype(str), item_texts(frame)))
    return [by_id.get(str(item_id), "") for item_id in item_ids]


def _sequences(store: Store, key: str, event_types: tuple[str, ...], collapse_repeats: bool) -> Sequences:
    query = (
        sa.select(events.c[key].label("key"), events.c.item_id, events.c.ts)
        .where(events.c[key].is_not(None), events.c.item_id.is_not(None), events.c.type.in_(event_types))
        .order_by(events.c[key], events.c.ts, events.c.id)
    )
    frame = store.read_frame(query)
    keys = frame["key"].to_numpy(dtype=object)
    item_ids = frame["item_id"].to_numpy(dtype=object)
    times = frame["ts"].to_numpy(dtype=np.int64)
    if collapse_repeats and len(frame):
        # A view, click and cart of one item in a row are one step of the sequence, not three.
        keep = np.r_[True, (item_ids[1:] != item_ids[:-1]) | (keys[1:] != keys[:-1])]
        keys, item_ids, times = keys[keep], item_ids[keep], times[keep]
    return Sequences.from_sorted_events(keys, item_ids, times, vocabulary=item_vocabulary(store))


def user_sequences(store: Store, event_types: tuple[str, ...] = ITEM_EVENTS, collapse_repeats: bool = True) -> Sequences:
    """Each registered user's items in time order."""
    return _sequences(store, "user_id", event_types, collapse_repeats)


def session_sequences(store: Store, event_types: tuple[str, ...] = ITEM_EVENTS, collapse_repeats: bool = True) -> Sequences:
    """Each session's items in time order (anonymous sessions included)."""
    return _sequences(store, "session_id", event_types, collapse_repeats)


def query_item_pairs(store: Store, window_minutes: float = 30.0) -> pd.DataFrame:
    """(query, item_id, grade) from the logs: the items a shopper viewed, clicked, carted or bought
    after a search in the same session (grade 1, 1, 2, 3: the strongest action counts), and the
    items shown after it but never acted on (grade 0, impressions)."""
    frame = store.read_frame(
        sa.select(events.c.session_id, events.c.type, events.c.item_id, events.c.query, events.c.ts)
        .where(events.c.session_id.is_not(None))
        .order_by(events.c.session_id, events.c.ts, events.c.id)
    )
    columns = ["query", "item_id", "grade"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    is_search = frame["type"].eq("search")
    frame["query_ts"] = frame["ts"].where(is_search)
    frame["query"] = frame["query"].where(is_search)
    filled = frame.groupby("session_id", sort=False)[["query", "query_ts"]].ffill()
    frame["query"], frame["query_ts"] = filled["query"], filled["query_ts"]
    after = frame[~is_search & frame["query"].notna() & frame["item_id"].notna()]
    after = after[(after["ts"] - after["query_ts"]) <= window_minutes * 60_000]
    after = after.assign(query=after["query"].str.strip().str.lower(), grade=after["type"].map(GRADES).fillna(0).astype(int))
    pairs = after.groupby(["query", "item_id"], as_index=False)["grade"].max()
    return pairs[columns].sort_values(columns[:2], ignore_index=True)
