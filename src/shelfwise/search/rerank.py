"""Cross-encoder reranker: MiniLM reads query and item text together; a new linear head scores them.

No cross-encoder ships with weights here, so the reranker is the pretrained MiniLM body with a
fresh scoring head, trained on graded judgments by :mod:`shelfwise.tuning.cross_encoder`. It is
far slower per item than the bi-encoder (one transformer pass per query-item pair), so it only
reorders the top ``top_n`` hits of another retriever.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from shelfwise.encoders.text import load_pretrained, mean_pool
from shelfwise.search.keyword import Hit


class CrossEncoder(torch.nn.Module):
    """BERT body + dropout + linear head over the mean-pooled pair encoding -> one logit per pair."""

    def __init__(self, body: torch.nn.Module, dropout: float = 0.1):
        super().__init__()
        self.body = body
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(body.config.hidden_size, 1)

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.body(**kwargs).last_hidden_state
        return self.head(self.dropout(mean_pool(hidden, attention_mask))).squeeze(-1)


class Reranker:
    """``score(query, texts)`` -> logits; ``rerank(query, hits, texts)`` reorders the top ``top_n``."""

    def __init__(self, max_length: int = 64, top_n: int = 20, batch_size: int = 32, device: str = "cpu"):
        self.max_length = max_length
        self.top_n = top_n
        self.batch_size = batch_size
        self.device = device
        self.tokenizer, body = load_pretrained()
        self.model = CrossEncoder(body).to(device).eval()

    @classmethod
    def from_artifact(cls, path: Path | str, top_n: int = 20, device: str = "cpu") -> "Reranker":
        from shelfwise import artifacts

        artifact = artifacts.load(path)
        if artifact.config.get("kind") != "cross-encoder":
            raise ValueError(f"{artifact.path} is not a cross-encoder artifact (kind={artifact.config.get('kind')!r})")
        reranker = cls(max_length=int(artifact.config.get("max_length", 64)), top_n=top_n, device=device)
        reranker.model.load_state_dict(artifact.state_dict(), strict=True)
        reranker.model.eval()
        return reranker

    def tokenize(self, queries: Sequence[str], texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(
            list(queries), list(texts), padding=True, truncation="only_second", max_length=self.max_length, return_tensors="pt"
        )
        return {k: v.to(self.device) for k, v in batch.items()}

    def logits(self, queries: Sequence[str], texts: Sequence[str], model: torch.nn.Module | None = None) -> torch.Tensor:
        """Differentiable scores of (query, text) pairs (training uses this)."""
        return (model or self.model)(**self.tokenize(queries, texts))

    @torch.inference_mode()
    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(texts), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            out[start : start + len(chunk)] = self.logits([query] * len(chunk), chunk).float().cpu().numpy()
        return out

    def rerank(self, query: str, hits: Sequence[Hit], texts: dict[str, str]) -> list[Hit]:
        """The top ``top_n`` hits reordered by the cross-encoder (scores are its logits, offset to stay
        above the rest); the hits after them keep their order below."""
        head, tail = list(hits[: self.top_n]), list(hits[self.top_n :])
        if not head:
            return tail
        scores = self.score(query, [texts.get(h.item_id, "") for h in head])
        order = np.argsort(-scores, kind="stable")
        # Shift reranked scores above the tail's so one list stays sorted by score.
        floor = max((h.score for h in tail), default=0.0)
        shift = floor - float(scores.min()) + 1.0
        return [Hit(head[i].item_id, float(scores[i]) + shift) for i in order] + tail
