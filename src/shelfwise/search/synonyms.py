"""Learned synonyms: the words shoppers type for what the catalogue calls otherwise.

Learned from judged (or clicked) search results. When a query word is missing from the title of
an item judged relevant to that query, the title says it some other way: "shelves" for "shelf",
"showerhead" for "shower head", "refrigerator" for "frig". Counted over all judged pairs, a title
word that stands in for a query word far more often than its share of titles would explain (its
*lift*) is kept as that word's synonym, with the share of pairs it stood in for. Keyword search
then also searches each synonym in the title, at ``weight`` times that share of the word's own
boost, so a query never judged gains from words the shop's shoppers taught it.

Words and synonyms are the keyword index's own tokens (stemmed), so fit with that index's
``analyze``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

KIND = "learned-synonyms"
ARTIFACT_NAME = "search-synonyms"  # <home>/artifacts/search-synonyms: where `search fit-synonyms` writes and the API looks


class LearnedSynonyms:
    """``fit(judgments, titles, analyze)``; ``expand(tokens)`` -> [(synonym, boost share)].

    A synonym of word w must stand in for w in at least ``min_pairs`` relevant (query, item) pairs,
    in at least ``min_share`` of the relevant pairs whose title lacks w, and ``min_lift`` times more
    often than its share of all titles; at most ``per_word`` per word (the most frequent). Numbers and
    tokens shorter than ``min_length`` are never synonyms (sizes and model codes are not words)."""

    def __init__(self, min_pairs: int = 2, min_share: float = 0.2, min_lift: float = 5.0, per_word: int = 3,
                 min_length: int = 3, relevant: float = 2.5, weight: float = 0.3):
        self.min_pairs = min_pairs
        self.min_share = min_share
        self.min_lift = min_lift
        self.per_word = per_word
        self.min_length = min_length
        self.relevant = relevant  # judgments at or above this relevance (1..3) teach synonyms
        self.weight = weight  # a synonym's boost: weight * share * the word's own title boost
        self.table: dict[str, list[tuple[str, float]]] = {}
        self.evidence: dict[str, int] = {}  # word -> relevant pairs whose title lacks it (what its shares are of)
        self.report: dict = {}

    def fit(self, judgments: pd.DataFrame, titles: Mapping[str, str], analyze: Callable[[str], Sequence[str]],
            correct: Callable[[str], str] = lambda q: q) -> "LearnedSynonyms":
        """``judgments``: query, item_id, relevance; ``titles``: item id -> title (the catalogue);
        ``correct``: the keyword index's spelling correction, applied to queries as search does."""
        title_tokens = {str(i): set(analyze(t)) for i, t in titles.items()}
        in_titles = Counter(t for tokens in title_tokens.values() for t in tokens)
        missing, stands_in = Counter(), Counter()
        good = judgments[judgments["relevance"] >= self.relevant]
        query_tokens: dict[str, set[str]] = {}
        for query, item_id in good[["query", "item_id"]].itertuples(index=False):
            words = query_tokens.get(query)
            if words is None:
                words = query_tokens[query] = set(analyze(correct(query)))
            title = title_tokens.get(str(item_id))
            if title is None:  # judged, but not in this catalogue
                continue
            for word in words - title:
                missing[word] += 1
                for token in title - words:
                    stands_in[word, token] += 1
        table = defaultdict(list)
        for (word, token), pairs in stands_in.items():
            share = pairs / missing[word]
            if (pairs >= self.min_pairs and share >= self.min_share and share >= self.min_lift * in_titles[token] / len(title_tokens)
                    and len(token) >= self.min_length and not any(c.isdigit() for c in token)):
                table[word].append((token, share))
        self.table = {w: sorted(s, key=lambda x: (-x[1], x[0]))[: self.per_word] for w, s in sorted(table.items())}
        self.evidence = {w: missing[w] for w in self.table}
        self.report = {"queries": len(query_tokens), "relevant_pairs": int(len(good)), "words": len(self.table),
                       "synonyms": sum(len(s) for s in self.table.values())}
        return self

    def expand(self, tokens: Sequence[str]) -> list[tuple[str, float]]:
        """The synonyms of ``tokens`` not among them, each with its boost share (``weight`` * share)."""
        words = set(tokens)
        found: dict[str, float] = {}
        for word in dict.fromkeys(tokens):
            for token, share in self.table.get(word, ()):
                if token not in words:
                    found[token] = max(found.get(token, 0.0), self.weight * share)
        return list(found.items())

    def config(self) -> dict:
        return {"kind": KIND, "min_pairs": self.min_pairs, "min_share": self.min_share, "min_lift": self.min_lift,
                "per_word": self.per_word, "min_length": self.min_length, "relevant": self.relevant, "weight": self.weight}

    def save(self, root: Path | str, metrics: dict | None = None) -> Path:
        """A new version under ``root`` (``latest`` points at it): the table in ``synonyms.json``."""
        from shelfwise import artifacts

        table = json.dumps({w: {"pairs": self.evidence.get(w, 0), "synonyms": [[t, round(s, 6)] for t, s in syn]}
                            for w, syn in self.table.items()}, indent=0).encode()
        return artifacts.save(root, {}, self.config(), {**self.report, **(metrics or {})}, extra_files={"synonyms.json": table}).path

    @classmethod
    def load(cls, path: Path | str) -> "LearnedSynonyms":
        """A version folder, or the ``latest`` version under a root."""
        from shelfwise import artifacts

        artifact = artifacts.load(path)
        config = dict(artifact.config)
        if config.pop("kind", None) != KIND or not (artifact.path / "synonyms.json").is_file():
            raise ValueError(f"{artifact.path}: not learned synonyms (make them with `shelfwise search fit-synonyms`)")
        self = cls(**config)
        saved = json.loads((artifact.path / "synonyms.json").read_text())
        self.table = {w: [(t, float(s)) for t, s in entry["synonyms"]] for w, entry in saved.items()}
        self.evidence = {w: int(entry["pairs"]) for w, entry in saved.items()}
        self.report = artifact.metrics
        return self
