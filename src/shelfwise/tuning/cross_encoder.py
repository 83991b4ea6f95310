"""Train the cross-encoder reranker (MiniLM body + new head) on graded relevance judgments.

Graded listwise loss: every training query brings a list, its judged items with their gains
(relevance - 1: Home Depot's 1..3 becomes 0..2) plus unjudged items from the first stage's (BM25's)
top ``list_depth`` with gain 0 -- the list the reranker will see when serving. The loss is the
cross-entropy between the softmax of the list's logits and its gains normalised to sum to one
(ListNet's top-one form), so "highly relevant" is pushed above "somewhat relevant", and both above
what the first stage retrieved but nobody judged relevant. Early stopping is on validation NDCG@10
of the reranked BM25 top ``rerank_depth``.

Measured on Home Depot (docs/benchmarks.md), after the ~1 epoch a 2-core CPU affords: neither this
loss nor the earlier pointwise one (binary cross-entropy towards gain / 2, 4 BM25 negatives per
query) orders BM25's top 20 as well as BM25 does (listwise 89% of BM25's NDCG@10, pointwise 87%),
which is why search mixes in the first stage's score (``first_stage_weight`` in search/rerank.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from shelfwise.encoders.text import BASE_MODEL_NAME
from shelfwise.search.rerank import Reranker
from shelfwise.search.semantic import item_texts
from shelfwise.tuning.judgments import query_gains
from shelfwise.tuning.methods import get_method, method_config
from shelfwise.tuning.steps import train_steps
from shelfwise.tuning.validation import ndcg_at_k


@dataclass
class CrossEncoderConfig:
    method: str = "full"  # the head is new: training the body with it works best; "lora" also works
    learning_rate: float | None = 5e-5  # None: the method's own default
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 48  # pairs per step: batch_size // list_size queries, each with its list
    list_size: int = 16  # items per query list: judged ones first (at most half), then unjudged
    negatives_per_query: int = 12  # unjudged first-stage items kept per query
    list_depth: int = 30  # first-stage depth the unjudged items come from
    max_steps: int = 300
    warmup_fraction: float = 0.1
    eval_every: int = 50
    patience: int = 3
    max_length: int = 64
    valid_queries: int = 150
    rerank_depth: int = 20
    seed: int = 0

    def __post_init__(self):
        get_method(self.method)
        if self.list_size < 2 or self.batch_size < self.list_size:
            raise ValueError(f"list_size must be >= 2 and batch_size >= list_size (got {self.list_size}, {self.batch_size})")


@dataclass
class QueryList:
    query: str
    judged: list[tuple[str, float]]  # (item text, gain > 0)
    unjudged: list[str]  # item texts, gain 0

    def sample(self, size: int, rng: np.random.Generator) -> tuple[list[str], list[float]]:
        """At most ``size`` items: up to half of them judged (random), the rest unjudged (random)."""
        judged = [self.judged[i] for i in rng.permutation(len(self.judged))[: max(1, size // 2)]]
        fill = size - len(judged)
        unjudged = [self.unjudged[i] for i in rng.permutation(len(self.unjudged))[:fill]]
        return [t for t, _ in judged] + unjudged, [g for _, g in judged] + [0.0] * len(unjudged)


def listwise_loss(logits: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """ListNet top-one cross-entropy of one query's list: -sum(gains / sum(gains) * log_softmax(logits))."""
    return -(gains / gains.sum() * torch.log_softmax(logits, dim=0)).sum()


def build_lists(
    judgments: pd.DataFrame, retrieved: dict[str, list[str]], texts: dict[str, str], negatives_per_query: int
) -> list[QueryList]:
    """One list per query with at least one judged item of gain > 0 (a list with nothing to push up
    teaches nothing): its judged items and up to ``negatives_per_query`` unjudged retrieved items."""
    judged = query_gains(judgments[judgments["item_id"].isin(texts.keys())])
    lists = []
    for query, gains in judged.items():
        positives = [(texts[i], g) for i, g in gains.items() if g > 0]
        if positives:
            unjudged = [texts[i] for i in retrieved.get(query, []) if i not in gains and i in texts][:negatives_per_query]
            lists.append(QueryList(query, positives, unjudged))
    return lists


class CrossEncoderTuner:
    def __init__(self, config: CrossEncoderConfig | None = None, reranker: Reranker | None = None, progress: bool = False):
        self.config = config or CrossEncoderConfig()
        self.reranker = reranker
        self.progress = progress
        self.history: list[dict] = []
        self.metrics: dict = {}

    def _validate(self, valid: list[tuple[str, list[str], dict[str, float]]], texts: dict[str, str]) -> float:
        self.model.eval()
        scores = []
        with torch.inference_mode():
            for query, candidates, gains in valid:
                logits = self.reranker.logits([query] * len(candidates), [texts[c] for c in candidates], model=self.model)
                order = np.argsort(-logits.float().numpy(), kind="stable")
                scores.append(ndcg_at_k([candidates[i] for i in order], gains))
        self.model.train()
        return float(np.mean(scores)) if scores else 0.0

    def fit(self, items: pd.DataFrame, train_judgments: pd.DataFrame, valid_judgments: pd.DataFrame) -> "CrossEncoderTuner":
        from shelfwise.search.keyword import KeywordIndex

        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        if self.reranker is None:
            self.reranker = Reranker(max_length=cfg.max_length)
        self.reranker.max_length = cfg.max_length
        started = time.perf_counter()
        items = items.assign(item_id=items["item_id"].astype(str))
        texts = dict(zip(items["item_id"], item_texts(items)))
        keyword = KeywordIndex().fit(items, progress=self.progress)
        bm25 = lambda queries, depth: [keyword.search(q, top=depth).item_ids for q in queries]  # noqa: E731
        train_queries = list(dict.fromkeys(train_judgments["query"]))
        retrieved = dict(zip(train_queries, bm25(train_queries, cfg.list_depth)))
        lists = build_lists(train_judgments, retrieved, texts, cfg.negatives_per_query)
        if not lists:
            raise ValueError("no training lists: no judged item with relevance above 1 is in the catalogue")
        valid_queries = list(dict.fromkeys(valid_judgments["query"]))
        if len(valid_queries) > cfg.valid_queries:
            valid_queries = [valid_queries[i] for i in sorted(rng.choice(len(valid_queries), cfg.valid_queries, replace=False))]
        gains = query_gains(valid_judgments)
        valid = []
        for query, ranked in zip(valid_queries, bm25(valid_queries, cfg.rerank_depth)):
            if ranked:
                valid.append((query, ranked, gains.get(query, {})))
        baseline = float(np.mean([ndcg_at_k(c, g) for _, c, g in valid])) if valid else 0.0
        prepare_seconds = time.perf_counter() - started

        method = get_method(cfg.method)
        model = self.reranker.model
        total_params = sum(p.numel() for p in model.parameters())
        model.body = method.wrap(model.body, total_steps=cfg.max_steps)
        self.model = model
        self.model.train()
        body_params = [p for p in model.body.parameters() if p.requires_grad]
        head_params = list(model.head.parameters())
        per_step = cfg.batch_size // cfg.list_size

        def passes():
            order = rng.permutation(len(lists))
            for start in range(0, len(order), per_step):
                yield order[start : start + per_step]

        def backward(chosen: np.ndarray) -> torch.Tensor:
            sampled = [lists[i].sample(cfg.list_size, rng) for i in chosen]
            logits = self.reranker.logits(
                [lists[i].query for i, (t, _) in zip(chosen, sampled) for _ in t], [text for t, _ in sampled for text in t], model=model
            )
            ends = np.cumsum([len(t) for t, _ in sampled])
            loss = torch.stack([
                listwise_loss(logits[end - len(t) : end], torch.tensor(g, dtype=logits.dtype)) for end, (t, g) in zip(ends, sampled)
            ]).mean()
            loss.backward()
            return loss.detach()

        run = train_steps(
            [
                {"params": body_params, "lr": cfg.learning_rate or method.learning_rate},
                {"params": head_params, "lr": cfg.head_learning_rate},
            ],
            batches=passes,
            backward=backward,
            validate=lambda: self._validate(valid, texts),
            max_steps=cfg.max_steps, warmup_fraction=cfg.warmup_fraction, eval_every=cfg.eval_every,
            patience=cfg.patience, weight_decay=cfg.weight_decay,
            after_backward=lambda step: method.after_backward(model.body, step),
            description=f"reranker ({cfg.method})" if self.progress else None,
        )
        self.history = run.history
        if method.name != "full":
            if not method.mergeable:
                raise ValueError(f"{method.name} cannot be merged into the reranker body; use full, lora, adalora or ia3")
            model.body = model.body.merge_and_unload()
        model.eval()
        self.method = method
        self.metrics = {
            "valid_ndcg@10": run.best,
            "valid_ndcg@10_before_training": run.initial,
            "valid_ndcg@10_bm25_order": baseline,
            "rerank_depth": cfg.rerank_depth,
            "best_step": run.best_step,
            "steps": run.steps,
            "train_seconds": round(run.seconds, 1),
            "prepare_seconds": round(prepare_seconds, 1),
            "trainable_params": sum(p.numel() for p in body_params + head_params),
            "total_params": total_params,
            "train_queries": len(lists),
            "train_pairs": sum(len(x.judged) + len(x.unjudged) for x in lists),
            "valid_queries": len(valid),
        }
        return self

    def save(self, root: Path | str):
        from shelfwise import artifacts

        config = {
            "kind": "cross-encoder",
            "base": BASE_MODEL_NAME,
            "max_length": self.config.max_length,
            "method": method_config(self.method),
            "training": asdict(self.config),
        }
        return artifacts.save(
            root, self.reranker.model.state_dict(), config, self.metrics,
            extra_files={"history.json": json.dumps(self.history, indent=2).encode()},
        )

