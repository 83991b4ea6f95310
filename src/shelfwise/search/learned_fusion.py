"""Learned fusion: the hybrid candidates reordered by a linear model over what both retrievers say.

Weighted fusion adds two min-max scaled scores with one weight for every query. The learned fusion
reads more about each candidate (:data:`FEATURES`: each retriever's score and rank, whether it
found the candidate at all, how many query words and neighbouring word pairs the item's text
holds, and its length) and weighs them by a linear model trained on relevance judgments
with a listwise loss (ListNet: the cross-entropy between the softmax of a list's gains and the
softmax of its scores). It reorders the weighted fusion's top candidates, so the candidate set,
and Recall@100 with it, stays the weighted fusion's.

Train it on queries the text encoder did not train on: on its own training queries a fine-tuned
encoder's scores are better than they will be on new queries, and the model would learn to trust
them too much.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from shelfwise.search.keyword import Hit

FEATURES = (
    "keyword_score",  # BM25 score / the query's best BM25 score; 0 when keyword search did not find it
    "keyword_rank",  # 1 / (1 + rank) in the keyword list; 0 when absent
    "in_keyword",
    "semantic_score",  # cosine to the query (computed for keyword-only candidates too)
    "semantic_gap",  # cosine - the best cosine among the candidates
    "feedback_cosine",  # cosine to the mean vector of the first FEEDBACK_TOP candidates (pseudo-relevance feedback)
    "semantic_rank",  # 1 / (1 + rank) in the semantic list; 0 when absent
    "in_semantic",
    "word_coverage",  # share of the query's words (index tokens) in the item's text
    "pair_coverage",  # share of the query's neighbouring word pairs side by side in the item's text
    "text_length",  # log(1 + item tokens)
)
# (Nothing about the query alone: it would add the same to every candidate of a list and change no order.)
# The true cosine in place of the list's lowest for keyword-only candidates, with the feedback cosine,
# gave 5-fold CV NDCG@10 0.4361 / 0.4345 / 0.4350 (three fold seeds) against 0.4329 / 0.4312 / 0.4312
# inside Home Depot's valid queries; the feedback centroid of the top 10 added nothing (docs/benchmarks.md).
FEEDBACK_TOP = 3
KIND = "learned-fusion"
ARTIFACT_NAME = "search-fusion"  # <home>/artifacts/search-fusion: where `search fit-fusion` writes and the API looks


def candidate_features(
    query_tokens: Sequence[str],
    keyword_hits: Sequence[Hit],
    semantic_hits: Sequence[Hit],
    candidates: Sequence[str],
    item_tokens: Callable[[str], Sequence[str]],
    query_vector: np.ndarray,
    vectors: np.ndarray,
) -> np.ndarray:
    """float32 [len(candidates), len(FEATURES)] for one query; ``vectors`` are the candidates' unit
    vectors in the semantic index, ``query_vector`` the query's (the corrected query, as searched)."""
    keyword = {h.item_id: (rank, h.score) for rank, h in enumerate(keyword_hits)}
    semantic = {h.item_id: rank for rank, h in enumerate(semantic_hits)}
    best_keyword = max((h.score for h in keyword_hits), default=1.0) or 1.0
    vectors = np.asarray(vectors, np.float32).reshape(len(candidates), -1)
    cosines = vectors @ np.asarray(query_vector, np.float32)
    best = float(cosines.max()) if len(cosines) else 0.0
    centroid = vectors[:FEEDBACK_TOP].mean(0) if len(vectors) else np.zeros(vectors.shape[1], np.float32)
    feedback = vectors @ (centroid / max(float(np.linalg.norm(centroid)), 1e-12))
    words, pairs = set(query_tokens), set(zip(query_tokens, query_tokens[1:]))
    rows = []
    for item_id, cosine, fed in zip(candidates, cosines.tolist(), feedback.tolist()):
        tokens = item_tokens(item_id)
        k_rank, k_score = keyword.get(item_id, (None, 0.0))
        s_rank = semantic.get(item_id)
        rows.append((
            k_score / best_keyword,
            0.0 if k_rank is None else 1.0 / (1 + k_rank),
            float(k_rank is not None),
            cosine,
            cosine - best,
            fed,
            0.0 if s_rank is None else 1.0 / (1 + s_rank),
            float(s_rank is not None),
            len(words & set(tokens)) / max(len(words), 1),
            len(pairs & set(zip(tokens, tokens[1:]))) / max(len(pairs), 1),
            math.log1p(len(tokens)),
        ))
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURES))


class LearnedFusion:
    """``fit(lists)`` with (features, gains) per query; ``score(features)`` -> one score per candidate.

    ``depth``: how many of the weighted fusion's hits it reorders (the rest keep their order)."""

    def __init__(self, epochs: int = 10, learning_rate: float = 3e-3, gain_temperature: float = 0.5, depth: int = 100, seed: int = 0):
        self.epochs = epochs
        self.gain_temperature = gain_temperature  # below 1 sharpens the target: the most relevant items carry the list
        self.learning_rate = learning_rate
        self.depth = depth
        self.seed = seed
        self.weights = np.zeros(len(FEATURES), np.float32)
        self.bias = 0.0
        self.mean = np.zeros(len(FEATURES), np.float32)
        self.std = np.ones(len(FEATURES), np.float32)
        self.report: dict = {}

    def fit(self, lists: Sequence[tuple[np.ndarray, np.ndarray]]) -> "LearnedFusion":
        import torch

        lists = [(x, g) for x, g in lists if len(x) and np.asarray(g).max() > 0]  # a list with no relevant item teaches nothing
        if not lists:
            raise ValueError("no query has a relevant item among its candidates: nothing to learn the fusion from")
        stacked = np.vstack([x for x, _ in lists])
        # A feature constant in training (std 0) is left unscaled, so that it cannot explode on new data.
        std = stacked.std(0)
        self.mean, self.std = stacked.mean(0), np.where(std > 1e-6, std, 1.0).astype(np.float32)
        torch.manual_seed(self.seed)
        model = torch.nn.Linear(len(FEATURES), 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        data = [(torch.from_numpy((x - self.mean) / self.std), torch.as_tensor(g, dtype=torch.float32)) for x, g in lists]
        order = np.random.default_rng(self.seed)
        losses = []
        for _ in range(self.epochs):
            total = 0.0
            for i in order.permutation(len(data)):
                features, gains = data[i]
                loss = -(torch.softmax(gains / self.gain_temperature, 0) * torch.log_softmax(model(features).squeeze(-1), 0)).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            losses.append(total / len(data))
        self.weights = model.weight.detach().numpy()[0].astype(np.float32)
        self.bias = float(model.bias.detach())
        self.report = {"queries": len(data), "candidates": int(len(stacked)), "loss_per_epoch": losses}
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std) @ self.weights + self.bias

    def rerank(self, fused: Sequence[Hit], features: np.ndarray) -> list[Hit]:
        """``fused`` (best first) with its first ``depth`` hits (``features`` rows) reordered by score."""
        scores = self.score(features[: self.depth])
        head = [Hit(fused[i].item_id, float(scores[i])) for i in np.argsort(-scores, kind="stable")]
        return head + list(fused[len(head):])

    def save(self, root: Path | str, metrics: dict | None = None) -> Path:
        """A new version of the artifact under ``root`` (``latest`` points at it); returns its folder."""
        import torch

        from shelfwise import artifacts

        tensors = {name: torch.from_numpy(np.asarray(value, np.float32).reshape(-1))
                   for name, value in (("weights", self.weights), ("bias", [self.bias]), ("mean", self.mean), ("std", self.std))}
        config = {"kind": KIND, "features": list(FEATURES),
                  "epochs": self.epochs, "learning_rate": self.learning_rate, "gain_temperature": self.gain_temperature, "depth": self.depth, "seed": self.seed}
        return artifacts.save(root, tensors, config, {**self.report, **(metrics or {})}).path

    @classmethod
    def load(cls, path: Path | str) -> "LearnedFusion":
        """A version folder, or the ``latest`` version under a root."""
        from shelfwise import artifacts

        artifact = artifacts.load(path)
        config = dict(artifact.config)
        if config.pop("kind", None) != KIND:
            raise ValueError(f"{artifact.path}: not a learned fusion (make one with `shelfwise search fit-fusion`)")
        features = config.pop("features")
        if features != list(FEATURES):
            raise ValueError(f"{artifact.path}: made for features {features}, this version computes {list(FEATURES)}; fit it again")
        self = cls(**config)
        tensors = {name: t.numpy() for name, t in artifact.state_dict().items()}
        self.weights, self.bias, self.mean, self.std = tensors["weights"], float(tensors["bias"][0]), tensors["mean"], tensors["std"]
        self.report = artifact.metrics
        return self


def fit_learned_fusion(hybrid, judgments, fusion: LearnedFusion | None = None) -> LearnedFusion:
    """Fit ``fusion`` (default: a new :class:`LearnedFusion`) on the candidates ``hybrid`` (a
    :class:`~shelfwise.search.hybrid.HybridSearch` without a learned fusion) retrieves for the judged
    queries; ``judgments`` has columns query, item_id, relevance (1..3: gain = relevance - 1, unjudged 0)."""
    if hybrid.texts is None:
        raise ValueError("the hybrid search has no item texts (HybridSearch(..., texts=...)): the fusion's word features need them")
    from shelfwise.tuning.judgments import query_gains

    fusion = fusion or LearnedFusion()
    gains = query_gains(judgments)
    queries = list(gains)
    lists = []
    for query, found in zip(queries, hybrid.retrieve_many(queries, max(hybrid.candidates, fusion.depth))):
        head = [h.item_id for h in hybrid.fuse(found.keyword, found.semantic)[: fusion.depth]]
        features = hybrid.candidate_features(query, found.keyword, found.semantic, head, found.vector)
        lists.append((features, np.array([gains[query].get(i, 0.0) for i in head], np.float32)))
    return fusion.fit(lists)
