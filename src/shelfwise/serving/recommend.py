"""The recommender service: one loaded model, the catalogue it recommends from, and the
answers the API gives (recommendations for a history, similar items).

A service is immutable once built. The registry (``serving.models``) builds a new one for a new
model version, catalogue or set of rules and swaps it in with one assignment, so a request
always sees one consistent model + catalogue + rules.

Any model that keeps the recommender contract can be served: ``score(histories: Sequences) ->
float32 [n, n_items + 1]`` (column 0 = padding). The model's item vocabulary may differ from
the current catalogue (items added or removed since training): scores are mapped onto the
catalogue by item id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.datasets.sequences import Sequences
from shelfwise.serving.ranking import CompiledRules, MerchandisingRules, explain, rank


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    source: str  # "artifact" (a trained, versioned artifact) or "fitted" (a baseline fitted at load)
    path: str | None = None
    created_at: float = 0.0  # when it was trained or fitted (epoch seconds)
    loaded_at: float = 0.0
    n_items: int = 0
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "source": self.source, "path": self.path,
                "created_at": self.created_at, "loaded_at": self.loaded_at, "n_items": self.n_items, "metrics": self.metrics}


@dataclass(frozen=True)
class Catalogue:
    """Item fields as arrays aligned with the service vocabulary (index 0 = padding)."""

    titles: np.ndarray
    categories: np.ndarray  # the category path or None
    category_codes: np.ndarray  # int, -1 = none
    top_category_codes: np.ndarray
    prices: np.ndarray  # float, nan = unknown
    images: np.ndarray
    available: np.ndarray  # bool: in the catalogue and in stock

    @classmethod
    def build(cls, item_ids: np.ndarray, frame: pd.DataFrame) -> "Catalogue":
        rows = frame.set_index("item_id").reindex(pd.Index(item_ids[1:], dtype=object))

        def column(name, fill=None):
            values = rows[name].astype(object).where(rows[name].notna(), fill).to_numpy(dtype=object) if name in rows else \
                np.full(len(rows), fill, dtype=object)
            return np.r_[np.array([fill], dtype=object), values]

        categories = column("category")
        tops = np.array([c.split(" > ")[0] if isinstance(c, str) else None for c in categories], dtype=object)
        in_catalogue = np.r_[False, rows["title"].notna().to_numpy()]
        in_stock = np.r_[False, rows["in_stock"].fillna(False).astype(bool).to_numpy()] if "in_stock" in rows else in_catalogue
        return cls(
            titles=column("title"),
            categories=categories,
            category_codes=_codes(categories),
            top_category_codes=_codes(tops),
            prices=np.r_[np.nan, pd.to_numeric(rows["price"], errors="coerce").to_numpy(float)] if "price" in rows
            else np.full(len(item_ids), np.nan),
            images=column("image"),
            available=in_catalogue & in_stock,
        )


def _codes(values: np.ndarray) -> np.ndarray:
    codes, _ = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64)


def cooccurrence(seqs: Sequences, window: int = 3) -> sp.csr_matrix:
    """Symmetric item-item counts of items within ``window`` steps in the same sequence,
    weighted 1/distance: the similar-items index and the source of explanations."""
    n = seqs.n_items + 1
    seq_id = np.repeat(np.arange(len(seqs)), seqs.lengths)
    rows, cols, data = [], [], []
    for lag in range(1, window + 1):
        if len(seqs.items) <= lag:
            break
        same = seq_id[lag:] == seq_id[:-lag]
        a, b = seqs.items[:-lag][same], seqs.items[lag:][same]
        keep = a != b
        a, b = a[keep], b[keep]
        rows += [a, b]
        cols += [b, a]
        data.append(np.full(2 * len(a), 1.0 / lag, dtype=np.float32))
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float32)


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float
    reason: str  # "pinned", "history" (see ``because``), "popular"
    because: list[str]  # history item ids that drove it
    pinned: bool
    boosted: bool


class LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int = 20_000):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)


@dataclass(frozen=True)
class RecommenderService:
    info: ModelInfo
    model: object  # keeps the recommender contract
    item_ids: np.ndarray  # the catalogue vocabulary: index i -> item id, [0] = ""
    index_of: dict
    model_index: np.ndarray | None  # catalogue index -> model index (0 = unknown); None = same vocabulary
    catalogue_index: np.ndarray | None  # model index -> catalogue index (0 = not in the catalogue)
    popularity: np.ndarray  # float32 [n + 1], -inf at 0
    cooc: sp.csr_matrix
    catalogue: Catalogue
    rules: CompiledRules
    raw_rules: MerchandisingRules
    # Answers by (history, exclusions, k): a shopper who reloads a page without new events is
    # answered without scoring. Each service has its own, so a switch never serves stale lists.
    cache: LRU = field(default_factory=LRU, compare=False, repr=False)

    @classmethod
    def build(cls, info: ModelInfo, model, model_item_ids: np.ndarray | None, seqs: Sequences, items: pd.DataFrame,
              rules: MerchandisingRules) -> "RecommenderService":
        """``seqs``: the shop's sequences over the catalogue vocabulary (``seqs.item_ids``), for
        popularity and co-occurrence; ``model_item_ids``: the model's vocabulary (None = the same)."""
        item_ids = seqs.item_ids
        index_of = {str(x): i for i, x in enumerate(item_ids) if i}
        model_index = catalogue_index = None
        if model_item_ids is not None and not np.array_equal(np.asarray(model_item_ids, dtype=object), item_ids):
            model_ids = np.asarray(model_item_ids, dtype=object)
            catalogue_index = np.array([index_of.get(str(x), 0) if i else 0 for i, x in enumerate(model_ids)], dtype=np.int64)
            model_index = np.zeros(len(item_ids), dtype=np.int64)
            known = catalogue_index > 0
            model_index[catalogue_index[known]] = np.flatnonzero(known)
        popularity = np.bincount(seqs.items, minlength=seqs.n_items + 1).astype(np.float32)
        popularity[0] = -np.inf
        catalogue = Catalogue.build(item_ids, items)
        return cls(info, model, item_ids, index_of, model_index, catalogue_index, popularity, cooccurrence(seqs), catalogue,
                   CompiledRules.build(rules, index_of, catalogue.categories), rules)

    @property
    def n_items(self) -> int:
        return len(self.item_ids) - 1

    def with_catalogue(self, items: pd.DataFrame) -> "RecommenderService":
        catalogue = Catalogue.build(self.item_ids, items)
        return replace(self, catalogue=catalogue, rules=CompiledRules.build(self.raw_rules, self.index_of, catalogue.categories),
                       cache=LRU())

    def with_rules(self, rules: MerchandisingRules) -> "RecommenderService":
        return replace(self, raw_rules=rules, rules=CompiledRules.build(rules, self.index_of, self.catalogue.categories),
                       cache=LRU())

    def indexes(self, ids) -> np.ndarray:
        return np.array([i for i in (self.index_of.get(x, 0) for x in ids) if i], dtype=np.int64)

    def score(self, history: np.ndarray) -> tuple[np.ndarray, bool]:
        """Scores over the catalogue for one history of catalogue indexes, and whether they
        came from the model (False: popularity, for a history the model knows nothing of)."""
        steps = history if self.model_index is None else self.model_index[history]
        steps = steps[steps > 0]
        if len(steps) == 0:
            return self.popularity.copy(), False
        n_model = self.n_items if self.catalogue_index is None else len(self.catalogue_index) - 1
        raw = np.asarray(self.model.score(Sequences.from_lists([steps.tolist()], n_items=n_model)))[0]
        if self.catalogue_index is None:
            return raw.astype(np.float32, copy=False), True
        scores = np.full(self.n_items + 1, -np.inf, dtype=np.float32)
        mapped = self.catalogue_index > 0
        scores[self.catalogue_index[mapped]] = raw[mapped]
        return scores, True

    def recommend(self, history_ids: list[str], exclude_ids=(), k: int = 10, exclude_history: bool = False) -> tuple[Recommendation, ...]:
        """The top ``k`` for a history (oldest first): only available items, never ``exclude_ids``
        (what was bought), the shop's rules applied, each with the history items behind it."""
        key = (tuple(history_ids), frozenset(exclude_ids), k, exclude_history)
        cached = self.cache.get(key)
        if cached is None:
            cached = tuple(self._recommend(history_ids, exclude_ids, k, exclude_history))
            self.cache.put(key, cached)
        return cached

    def _recommend(self, history_ids: list[str], exclude_ids, k: int, exclude_history: bool) -> list[Recommendation]:
        history = self.indexes(history_ids)
        scores, personal = self.score(history)
        eligible = self.catalogue.available.copy()
        eligible[self.indexes(exclude_ids)] = False
        if exclude_history:
            eligible[history] = False
        ranked = rank(scores, eligible, k, self.rules, self.catalogue.category_codes, self.catalogue.top_category_codes)
        reasons = explain(self.cooc, history, ranked.items) if personal else [[] for _ in ranked.items]
        out = []
        for item, score, pinned, boosted, because in zip(ranked.items, ranked.scores, ranked.pinned, ranked.boosted, reasons):
            # An item the model ranked but no history item sits next to came from the popularity prior.
            reason = "pinned" if pinned else ("history" if because else "popular")
            out.append(Recommendation(str(self.item_ids[item]), round(float(score), 6), reason,
                                      [str(self.item_ids[b]) for b in because], bool(pinned), bool(boosted)))
        return out

    def similar(self, item_id: str, k: int = 10) -> list[tuple[str, float, str]]:
        """Items seen next to ``item_id`` most often (reason "co-occurrence"); when there are too
        few, popular items of its category fill the list (reason "same category")."""
        i = self.index_of[item_id]
        row = self.cooc.getrow(i)
        eligible = self.catalogue.available.copy()
        eligible[i] = False
        together = {int(j): float(v) for j, v in zip(row.indices, row.data) if eligible[j]}
        best = sorted(together.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        out = [(str(self.item_ids[j]), round(v, 6), "co-occurrence") for j, v in best]
        if len(out) < k:
            code = self.catalogue.category_codes[i]
            same = eligible & (self.catalogue.category_codes == code) & (code >= 0)
            same[[j for j, _ in best]] = False
            fill = np.flatnonzero(same)
            fill = fill[np.lexsort((fill, -self.popularity[fill]))][: k - len(out)]
            out += [(str(self.item_ids[j]), 0.0, "same category") for j in fill]
        return out

    def sizes(self) -> dict[str, int]:
        return {"catalogue_items": self.n_items, "available_items": int(self.catalogue.available.sum()),
                "cooccurrence_pairs": int(self.cooc.nnz), "pinned": len(self.rules.pinned)}
