"""Fine-tune the MiniLM bi-encoder on relevance judgments with a contrastive loss.

Each batch holds B (query, relevant item) pairs, at most one per query, plus ``negatives`` hard
negatives per pair. Every query is scored against all B positives and all hard negatives
(in-batch negatives: the other queries' positives come for free), and cross-entropy pushes its own
positive to the top. Hard negatives come from BM25 and/or the current encoder
(:mod:`shelfwise.tuning.pairs`). Training warms the learning rate up, checks validation NDCG@10 on a
fixed pool every ``eval_every`` steps, stops when it stops improving and keeps the best weights.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from shelfwise.encoders.text import BASE_MODEL_NAME, TextEncoder
from shelfwise.search.semantic import item_texts
from shelfwise.tuning.adversarial import get_adversary
from shelfwise.tuning.methods import get_method, method_config, trainable_parameters
from shelfwise.tuning.pairs import Example, batches, build_examples, merge_negatives, mine_hard_negatives
from shelfwise.tuning.steps import train_steps
from shelfwise.tuning.validation import ValidationPool

MINERS = ("bm25", "model")


@dataclass
class BiEncoderConfig:
    method: str = "lora"
    method_options: dict = field(default_factory=dict)
    adversarial: str = "none"
    learning_rate: float | None = None  # None: the method's own default
    weight_decay: float = 0.01
    batch_size: int = 32
    negatives: int = 1  # hard negatives per pair in a batch
    max_steps: int = 300
    warmup_fraction: float = 0.1
    temperature: float = 0.05
    eval_every: int = 50
    patience: int = 3  # evaluations without improvement before stopping
    max_length: int = 48
    min_relevance: float = 2.33  # judged at least this -> positive
    hard_negative_miners: tuple[str, ...] = ("bm25",)
    mined_per_query: int = 8
    valid_queries: int = 200
    valid_pool_depth: int = 30
    seed: int = 0

    def __post_init__(self):
        get_method(self.method)
        get_adversary(self.adversarial)
        unknown = set(self.hard_negative_miners) - set(MINERS)
        if unknown:
            raise ValueError(f"unknown hard-negative miners {sorted(unknown)}; expected some of {MINERS}")


class BiEncoderTuner:
    """``fit(items, train_judgments, valid_judgments)`` then ``save(root)`` -> an encoder artifact
    that :meth:`TextEncoder.from_artifact` (and ``shelfwise search run --model``) loads."""

    def __init__(self, config: BiEncoderConfig | None = None, encoder: TextEncoder | None = None, progress: bool = False):
        self.config = config or BiEncoderConfig()
        self.encoder = encoder
        self.progress = progress
        self.history: list[dict] = []
        self.metrics: dict = {}
        self.model: torch.nn.Module | None = None

    # ---- data -----------------------------------------------------------------------------

    def _miners(self, items: pd.DataFrame):
        from shelfwise.search.keyword import KeywordIndex
        from shelfwise.search.semantic import SemanticSearch

        keyword = KeywordIndex().fit(items, progress=self.progress)
        miners = {"bm25": lambda queries, depth: [keyword.search(q, top=depth).item_ids for q in queries]}
        if "model" in self.config.hard_negative_miners:
            semantic = SemanticSearch(self.encoder, progress=self.progress).fit(items)
            miners["model"] = lambda queries, depth: [p.item_ids for p in semantic.search_many(queries, top=depth)]
        return miners

    def _prepare(self, items, train_judgments, valid_judgments):
        cfg = self.config
        items = items.assign(item_id=items["item_id"].astype(str))
        miners = self._miners(items)
        mined = [mine_hard_negatives(train_judgments, miners[name], per_query=cfg.mined_per_query) for name in cfg.hard_negative_miners]
        examples = build_examples(train_judgments, merge_negatives(*mined) if mined else {}, cfg.min_relevance)
        known = set(items["item_id"])
        examples = [e for e in examples if e.positive in known]
        if not examples:
            raise ValueError(f"no training pairs: no judged item with relevance >= {cfg.min_relevance} is in the catalogue")
        texts = dict(zip(items["item_id"], item_texts(items)))
        pool = ValidationPool.build(valid_judgments, items, miners["bm25"], cfg.valid_queries, cfg.valid_pool_depth, cfg.seed)
        return examples, texts, pool

    # ---- training -------------------------------------------------------------------------

    def _batch_texts(self, batch: list[Example], texts: dict[str, str], rng: np.random.Generator):
        queries = [e.query for e in batch]
        positives = [texts[e.positive] for e in batch]
        negatives = []
        for e in batch:
            candidates = [n for n in e.negatives if n in texts and n != e.positive]
            if candidates:
                picks = rng.choice(len(candidates), min(self.config.negatives, len(candidates)), replace=False)
                negatives.extend(texts[candidates[i]] for i in picks)
        return queries, positives + negatives

    def _loss(self, queries: list[str], candidates: list[str]) -> torch.Tensor:
        q = self.encoder.embed(queries, model=self.model)
        c = self.encoder.embed(candidates, model=self.model)
        logits = q @ c.T / self.config.temperature
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(queries)))

    def _validate(self, pool: ValidationPool) -> float:
        self.model.eval()
        with torch.inference_mode():
            score = pool.ndcg(lambda texts: self._encode(texts))
        self.model.train()
        return score

    def _encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.encoder.embed([texts[i] for i in idx], model=self.model).float().numpy()
        return out

    def fit(self, items: pd.DataFrame, train_judgments: pd.DataFrame, valid_judgments: pd.DataFrame) -> "BiEncoderTuner":
        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        if self.encoder is None:
            self.encoder = TextEncoder(max_length=cfg.max_length)
        self.encoder.max_length = cfg.max_length
        started = time.perf_counter()
        examples, texts, pool = self._prepare(items, train_judgments, valid_judgments)
        prepare_seconds = time.perf_counter() - started

        method = get_method(cfg.method, **cfg.method_options)
        adversary = get_adversary(cfg.adversarial)
        total_params = sum(p.numel() for p in self.encoder.model.parameters())
        self.model = method.wrap(self.encoder.model, total_steps=cfg.max_steps)
        self.model.train()
        parameters = [p for p in self.model.parameters() if p.requires_grad]

        def backward(batch: list[Example]) -> torch.Tensor:
            queries, candidates = self._batch_texts(batch, texts, rng)
            return adversary.backward(self.model, lambda: self._loss(queries, candidates))

        run = train_steps(
            [{"params": parameters, "lr": cfg.learning_rate or method.learning_rate}],
            batches=lambda: batches(examples, cfg.batch_size, rng),
            backward=backward,
            validate=lambda: self._validate(pool),
            max_steps=cfg.max_steps, warmup_fraction=cfg.warmup_fraction, eval_every=cfg.eval_every,
            patience=cfg.patience, weight_decay=cfg.weight_decay,
            after_backward=lambda step: method.after_backward(self.model, step),
            description=f"fine-tune ({cfg.method})" if self.progress else None,
        )
        self.history = run.history
        self.model.eval()
        self.method = method
        self.metrics = {
            "valid_ndcg@10": run.best,
            "valid_ndcg@10_zero_shot": run.initial,
            "best_step": run.best_step,
            "steps": run.steps,
            "train_seconds": round(run.seconds, 1),
            "prepare_seconds": round(prepare_seconds, 1),
            "trainable_params": trainable_parameters(self.model),
            "total_params": total_params,
            "trainable_fraction": trainable_parameters(self.model) / total_params,
            "train_pairs": len(examples),
            "valid_queries": len(pool.queries),
            "valid_pool_items": len(pool.item_ids),
            "history": self.history,
        }
        return self

    # ---- saving ---------------------------------------------------------------------------

    def save(self, root: Path | str):
        """Write the encoder artifact: merged weights for serving (or, for prefix tuning, the
        adapter), with the small adapter itself beside them as ``adapter.safetensors``."""
        from safetensors.torch import save as to_bytes

        from shelfwise import artifacts

        if self.model is None:
            raise RuntimeError("fit() first")
        method = self.method
        extra = {}
        is_peft = method.name != "full"
        if is_peft:
            from peft import get_peft_model_state_dict

            adapter = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(self.model).items()}
            extra["adapter.safetensors"] = to_bytes(adapter)
        if method.mergeable:
            served = self.model.merge_and_unload() if is_peft else self.model
            state, merged = served.state_dict(), True
        else:
            state, merged = adapter, False
        config = {
            "kind": "text-encoder",
            "base": BASE_MODEL_NAME,
            "max_length": self.config.max_length,
            "merged": merged,
            "method": method_config(method),
            "training": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()},
        }
        extra["history.json"] = json.dumps(self.history, indent=2).encode()
        metrics = {k: v for k, v in self.metrics.items() if k != "history"}
        artifact = artifacts.save(root, state, config, metrics, extra_files=extra)
        if merged and is_peft:
            # The wrapped model was consumed by merging; keep serving the merged one.
            self.model = served
            self.encoder.model = served
        return artifact
