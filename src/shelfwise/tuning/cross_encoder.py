"""Train the cross-encoder reranker (MiniLM body + new head) on graded relevance judgments.

Graded relevance loss: each (query, item) pair's target is its gain scaled to [0, 1]
((relevance - 1) / 2: Home Depot's 1..3), learned with binary cross-entropy on the logit, so a
"somewhat relevant" item is pushed to the middle rather than treated as a hit or a miss. Each
query also gets BM25 hard negatives (target 0), the items a reranker will actually see wrongly
ranked high. Early stopping is on validation NDCG@10 of the reranked BM25 top ``rerank_depth``.
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
from shelfwise.tuning.bi_encoder import _linear_warmup_decay
from shelfwise.tuning.methods import get_method, method_config
from shelfwise.tuning.pairs import mine_hard_negatives
from shelfwise.tuning.validation import ndcg_at_k


@dataclass
class CrossEncoderConfig:
    method: str = "full"  # the head is new: training the body with it works best; "lora" also works
    learning_rate: float | None = None
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 32  # pairs per step
    negatives_per_query: int = 4
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


class CrossEncoderTuner:
    def __init__(self, config: CrossEncoderConfig | None = None, reranker: Reranker | None = None, progress: bool = False):
        self.config = config or CrossEncoderConfig()
        self.reranker = reranker
        self.progress = progress
        self.history: list[dict] = []
        self.metrics: dict = {}

    def _pairs(self, judgments: pd.DataFrame, negatives: dict[str, list[str]], texts: dict[str, str]) -> list[tuple[str, str, float]]:
        pairs = [
            (q, texts[i], float(np.clip((r - 1.0) / 2.0, 0.0, 1.0)))
            for q, i, r in judgments[["query", "item_id", "relevance"]].itertuples(index=False)
            if i in texts
        ]
        judged = set(zip(judgments["query"], judgments["item_id"]))
        pairs += [(q, texts[i], 0.0) for q, items in negatives.items() for i in items if i in texts and (q, i) not in judged]
        return pairs

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
        negatives = mine_hard_negatives(train_judgments, bm25, per_query=cfg.negatives_per_query, skip_top=3)
        pairs = self._pairs(train_judgments, negatives, texts)
        if not pairs:
            raise ValueError("no training pairs: no judged item is in the catalogue")
        valid_queries = list(dict.fromkeys(valid_judgments["query"]))
        if len(valid_queries) > cfg.valid_queries:
            valid_queries = [valid_queries[i] for i in sorted(rng.choice(len(valid_queries), cfg.valid_queries, replace=False))]
        gains: dict[str, dict[str, float]] = {}
        for q, i, r in valid_judgments[["query", "item_id", "relevance"]].itertuples(index=False):
            gains.setdefault(q, {})[i] = max(gains.get(q, {}).get(i, 0.0), r - 1.0)
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
        optimizer = torch.optim.AdamW(
            [
                {"params": body_params, "lr": cfg.learning_rate or method.learning_rate},
                {"params": head_params, "lr": cfg.head_learning_rate},
            ],
            weight_decay=cfg.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_warmup_decay(int(cfg.warmup_fraction * cfg.max_steps), cfg.max_steps))
        best = self._validate(valid, texts)
        start_score = best
        best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        best_step, stale, step, losses = 0, 0, 0, []
        self.history = [{"step": 0, "valid_ndcg@10": best}]
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.max_steps, desc=f"reranker ({cfg.method})", unit="step")
        train_started = time.perf_counter()
        while step < cfg.max_steps and stale < cfg.patience:
            order = rng.permutation(len(pairs))
            for start in range(0, len(order), cfg.batch_size):
                if step >= cfg.max_steps or stale >= cfg.patience:
                    break
                batch = [pairs[i] for i in order[start : start + cfg.batch_size]]
                logits = self.reranker.logits([b[0] for b in batch], [b[1] for b in batch], model=model)
                targets = torch.tensor([b[2] for b in batch], dtype=logits.dtype)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
                loss.backward()
                method.after_backward(model.body, step)
                torch.nn.utils.clip_grad_norm_(body_params + head_params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                losses.append(loss.item())
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", best=f"{best:.4f}")
                if step % cfg.eval_every == 0 or step == cfg.max_steps:
                    score = self._validate(valid, texts)
                    self.history.append({"step": step, "loss": float(np.mean(losses[-cfg.eval_every:])), "valid_ndcg@10": score})
                    if score > best:
                        best, stale, best_step = score, 0, step
                        best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
                    else:
                        stale += 1
        if bar is not None:
            bar.close()
        with torch.no_grad():
            named = dict(model.named_parameters())
            for name, value in best_state.items():
                named[name].copy_(value)
        if method.name != "full":
            if not method.mergeable:
                raise ValueError(f"{method.name} cannot be merged into the reranker body; use full, lora, adalora or ia3")
            model.body = model.body.merge_and_unload()
        model.eval()
        self.method = method
        self.metrics = {
            "valid_ndcg@10": best,
            "valid_ndcg@10_before_training": start_score,
            "valid_ndcg@10_bm25_order": baseline,
            "rerank_depth": cfg.rerank_depth,
            "best_step": best_step,
            "steps": step,
            "train_seconds": round(time.perf_counter() - train_started, 1),
            "prepare_seconds": round(prepare_seconds, 1),
            "trainable_params": sum(p.numel() for p in body_params + head_params),
            "total_params": total_params,
            "train_pairs": len(pairs),
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

