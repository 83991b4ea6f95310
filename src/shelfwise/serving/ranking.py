"""Business rules applied to a model's scores: what may be shown, the shop's pins and boosts,
diversity across categories (maximal marginal relevance) and the reason for each pick.

Everything works on whole arrays over the catalogue, index 0 being padding."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.recommenders.sparse import gather_rows


class MerchandisingRules(BaseModel):
    """The shop's say in the lists: pinned items go first (in this order) wherever they are
    eligible; boosts multiply an item's (normalised) relevance, per item or per category
    (a category boost covers its subcategories); ``diversity`` is the MMR trade-off, 0 = pure
    relevance, 1 = categories as different as possible."""

    model_config = ConfigDict(extra="forbid")

    pinned: list[str] = Field(default_factory=list, max_length=100)
    item_boosts: dict[str, float] = Field(default_factory=dict)
    category_boosts: dict[str, float] = Field(default_factory=dict)
    diversity: float = Field(default=0.3, ge=0.0, le=1.0)

    def model_post_init(self, _context) -> None:
        for where, boosts in (("item_boosts", self.item_boosts), ("category_boosts", self.category_boosts)):
            for name, factor in boosts.items():
                if not 0.0 <= factor <= 100.0:
                    raise ValueError(f"{where}[{name!r}]: a boost must lie in 0..100, got {factor}")


def rules_path(home: Path) -> Path:
    return home / "merchandising.json"


def load_rules(home: Path) -> MerchandisingRules:
    path = rules_path(home)
    return MerchandisingRules.model_validate_json(path.read_text()) if path.is_file() else MerchandisingRules()


def save_rules(home: Path, rules: MerchandisingRules) -> None:
    """Written to a temporary file and renamed, so a reader never sees half a file."""
    path = rules_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rules.model_dump(), indent=2))
    os.replace(tmp, path)


@dataclass
class CompiledRules:
    """Rules resolved against one catalogue: arrays indexed like the catalogue."""

    boost: np.ndarray  # float32 [n + 1], 1.0 where nothing is boosted
    pinned: np.ndarray  # int64 catalogue indexes, in pin order
    diversity: float

    @classmethod
    def build(cls, rules: MerchandisingRules, index_of: dict[str, int], categories: np.ndarray) -> "CompiledRules":
        boost = np.ones(len(categories), dtype=np.float32)
        for category, factor in rules.category_boosts.items():
            hit = np.fromiter((isinstance(c, str) and (c == category or c.startswith(category + " > ")) for c in categories),
                              dtype=bool, count=len(categories))
            boost[hit] *= factor
        for item_id, factor in rules.item_boosts.items():
            if item_id in index_of:
                boost[index_of[item_id]] *= factor
        pinned = np.array([index_of[i] for i in rules.pinned if i in index_of], dtype=np.int64)
        return cls(boost, pinned, rules.diversity)


@dataclass
class Ranked:
    items: np.ndarray  # catalogue indexes, best first
    scores: np.ndarray  # the relevance each was ranked by (normalised, boosted)
    pinned: np.ndarray  # bool: placed by a pin
    boosted: np.ndarray  # bool: its boost is not 1


def rank(
    scores: np.ndarray,
    eligible: np.ndarray,
    k: int,
    rules: CompiledRules,
    category_codes: np.ndarray,
    top_category_codes: np.ndarray,
    pool: int = 200,
) -> Ranked:
    """The top ``k`` eligible items: pins first, then the rest chosen greedily by MMR.

    ``scores`` may be any real numbers (logits, probabilities); they are min-max normalised
    into [0.1, 1] over the candidate pool so boosts and the diversity penalty mean the same for
    every model.
    Similarity for MMR: 1 for the same category, 0.5 for the same top-level category, else 0."""
    ok = eligible & np.isfinite(scores)
    ok[0] = False
    pins = [p for p in rules.pinned.tolist() if ok[p]][:k]
    ok[pins] = False
    need = k - len(pins)
    candidates = np.flatnonzero(ok)
    if need > 0 and len(candidates) > max(pool, need):
        size = max(pool, need * 4)
        part = np.argpartition(-scores[candidates], size - 1)[:size]
        candidates = candidates[part]
    chosen: list[int] = []
    chosen_rel: list[float] = []
    if need > 0 and len(candidates):
        raw = scores[candidates].astype(np.float64)
        span = raw.max() - raw.min()
        # Into [0.1, 1]: a floor above 0, so a boost lifts even the pool's weakest candidate.
        rel = 0.1 + 0.9 * (raw - raw.min()) / span if span > 0 else np.ones_like(raw)
        rel = rel * rules.boost[candidates]
        # Stable, deterministic order among equals: by relevance, then catalogue index.
        order = np.lexsort((candidates, -rel))
        candidates, rel = candidates[order], rel[order]
        lam = 1.0 - rules.diversity
        cats, tops = category_codes[candidates], top_category_codes[candidates]
        max_sim = np.zeros(len(candidates))
        for s in pins:  # pinned items count as already shown
            max_sim = np.maximum(max_sim, _similarity(cats, tops, category_codes[s], top_category_codes[s]))
        taken = np.zeros(len(candidates), dtype=bool)
        for _ in range(min(need, len(candidates))):
            mmr = np.where(taken, -np.inf, lam * rel - (1.0 - lam) * max_sim)
            best = int(np.argmax(mmr))
            taken[best] = True
            chosen.append(int(candidates[best]))
            chosen_rel.append(float(rel[best]))
            max_sim = np.maximum(max_sim, _similarity(cats, tops, cats[best], tops[best]))
    items = np.array(pins + chosen, dtype=np.int64)
    return Ranked(
        items=items,
        scores=np.array([1.0] * len(pins) + chosen_rel, dtype=np.float64),
        pinned=np.array([True] * len(pins) + [False] * len(chosen), dtype=bool),
        boosted=rules.boost[items] != 1.0,
    )


def _similarity(cats: np.ndarray, tops: np.ndarray, cat: int, top: int) -> np.ndarray:
    # Code -1 means "no category": items without one are never similar by category.
    same_cat = (cats == cat) & (cat >= 0)
    same_top = (tops == top) & (top >= 0)
    return np.where(same_cat, 1.0, np.where(same_top, 0.5, 0.0))


def explain(cooc, history: np.ndarray, recommended: np.ndarray, max_reasons: int = 2) -> list[list[int]]:
    """For each recommended item, the history items (catalogue indexes) most often seen next to
    it in the shop's sequences, strongest first; recent history weighs more on ties."""
    k = len(recommended)
    if len(history) == 0 or k == 0:
        return [[] for _ in recommended]
    recent_first = np.array(list(dict.fromkeys(history[::-1].tolist())), dtype=np.int64)
    row, cols, vals = gather_rows(cooc, recent_first)
    order = np.argsort(recommended)
    pos = np.clip(np.searchsorted(recommended, cols, sorter=order), 0, k - 1)
    hit = recommended[order[pos]] == cols
    strength = np.zeros((len(recent_first), k))
    strength[row[hit], order[pos[hit]]] = vals[hit]
    # Recency breaks ties: the most recent item gets a tiny bonus.
    strength *= (1.0 + 1e-3 / (1.0 + np.arange(len(recent_first))))[:, None]
    top = np.argsort(-strength, axis=0, kind="stable")[:max_reasons]  # [reasons, k]
    return [[int(recent_first[t]) for t in top[:, j] if strength[t, j] > 0] for j in range(k)]
