"""Cross-encoder reranker: MiniLM reads query and item text together; a new linear head scores them.

No cross-encoder ships with weights here, so the reranker is the pretrained MiniLM body with a
fresh scoring head, trained on graded judgments by :mod:`shelfwise.tuning.cross_encoder`. It is
far slower per item than the bi-encoder (one transformer pass per query-item pair), so it only
reorders the top ``top_n`` hits of another retriever.

Two runtimes share the scoring and reordering (:class:`RerankerBase`): :class:`Reranker` (torch,
trainable) and :class:`OnnxReranker` (ONNX Runtime, fp32 or int8, from :func:`export_reranker`);
:func:`load_reranker` opens either from a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from shelfwise.encoders.text import load_pretrained, load_tokenizer, mean_pool
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


PAIR_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # query and text: two segments
LOGIT_OUTPUT = "logits"


def tokenize_pairs(tokenizer, queries: Sequence[str], texts: Sequence[str], max_length: int, return_tensors: str = "pt") -> dict:
    """(query, text) pairs padded to the longest, the text cut to fit ``max_length``: the one pair
    tokenisation of training and both runtimes."""
    return tokenizer(
        list(queries), list(texts), padding=True, truncation="only_second", max_length=max_length, return_tensors=return_tensors
    )


class RerankerBase:
    """What every reranker runtime shares: ``score(query, texts)`` -> float32 logits in batches, and
    ``rerank(query, hits, texts)``, which reorders the top ``top_n``. A runtime implements
    :meth:`_score_batch`."""

    top_n: int
    batch_size: int
    # Weight of the first stage's own scores next to the cross-encoder's when reordering (both
    # standardised over the top N); 0 reorders by the cross-encoder alone.
    first_stage_weight: float = 0.0

    def _score_batch(self, queries: list[str], texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(texts), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            out[start : start + len(chunk)] = self._score_batch([query] * len(chunk), chunk)
        return out

    def rerank(self, query: str, hits: Sequence[Hit], texts: dict[str, str], scores: np.ndarray | None = None) -> list[Hit]:
        """The top ``top_n`` hits reordered by the cross-encoder (scores are its logits, or with a
        ``first_stage_weight`` the mix of both standardised scores, offset to stay above the rest); the
        hits after them keep their order below. ``scores``: the cross-encoder's scores of the top
        ``top_n`` when the caller already has them."""
        head, tail = list(hits[: self.top_n]), list(hits[self.top_n :])
        if not head:
            return tail
        if scores is None:
            scores = self.score(query, [texts.get(h.item_id, "") for h in head])
        if self.first_stage_weight:
            scores = _standardised(scores) + self.first_stage_weight * _standardised(np.array([h.score for h in head], dtype=np.float32))
        order = np.argsort(-scores, kind="stable")
        # Shift reranked scores above the tail's so one list stays sorted by score.
        floor = max((h.score for h in tail), default=0.0)
        shift = floor - float(scores.min()) + 1.0
        return [Hit(head[i].item_id, float(scores[i]) + shift) for i in order] + tail


def _standardised(scores: np.ndarray) -> np.ndarray:
    spread = float(scores.std())
    return (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)


class Reranker(RerankerBase):
    """The torch cross-encoder: ``score(query, texts)`` -> logits; ``rerank(query, hits, texts)``
    reorders the top ``top_n``; ``logits`` is differentiable, for training."""

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
        batch = tokenize_pairs(self.tokenizer, queries, texts, self.max_length)
        return {k: v.to(self.device) for k, v in batch.items()}

    def logits(self, queries: Sequence[str], texts: Sequence[str], model: torch.nn.Module | None = None) -> torch.Tensor:
        """Differentiable scores of (query, text) pairs (training uses this)."""
        return (model or self.model)(**self.tokenize(queries, texts))

    @torch.inference_mode()
    def _score_batch(self, queries: list[str], texts: list[str]) -> np.ndarray:
        return self.logits(queries, texts).float().cpu().numpy()


class OnnxReranker(RerankerBase):
    """The cross-encoder for serving: the ``score`` / ``rerank`` / ``top_n`` API of :class:`Reranker`,
    computed by ONNX Runtime from an export folder (:func:`export_reranker`), without torch weights.

    ``int8``: serve ``model.int8.onnx`` (True), ``model.onnx`` (False), or the default (None: the
    text encoder's rule, int8 when the folder has it). ``threads``: intra-op threads, 0 for one per core.
    """

    def __init__(self, export_dir: Path | str, top_n: int = 20, batch_size: int = 32, int8: bool | None = None, threads: int = 0):
        from shelfwise.encoders.onnx import CROSS_ENCODER_KIND, open_session, read_export_config

        self.export_dir = Path(export_dir)
        self.config = read_export_config(self.export_dir, kind=CROSS_ENCODER_KIND)
        self.session, self.int8 = open_session(self.export_dir, int8, threads)
        self.max_length = int(self.config["max_length"])
        self.top_n = top_n
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(self.export_dir)

    def _score_batch(self, queries: list[str], texts: list[str]) -> np.ndarray:
        batch = tokenize_pairs(self.tokenizer, queries, texts, self.max_length, return_tensors="np")
        inputs = {name: batch[name].astype(np.int64) for name in PAIR_INPUTS}
        return self.session.run([LOGIT_OUTPUT], inputs)[0].astype(np.float32, copy=False)


def export_reranker(reranker_or_artifact_dir: Reranker | Path | str, out_dir: Path | str, int8: bool = False) -> Path:
    """Write the cross-encoder to ``out_dir`` for :class:`OnnxReranker`: ``model.onnx`` ((query, text)
    pair tokens -> one logit per pair; batch and sequence axes dynamic), with ``int8`` also
    ``model.int8.onnx``, the tokenizer and ``onnx_encoder.json`` (kind ``onnx-cross-encoder``). The
    source is a :class:`Reranker` or a cross-encoder artifact (``search finetune --target cross-encoder --out``)."""
    from shelfwise.encoders.onnx import CROSS_ENCODER_KIND, export_model

    if isinstance(reranker_or_artifact_dir, Reranker):
        reranker, source = reranker_or_artifact_dir, "an in-memory Reranker"
    else:
        reranker = Reranker.from_artifact(reranker_or_artifact_dir)
        source = str(Path(reranker_or_artifact_dir).resolve())
    example = tokenize_pairs(reranker.tokenizer, ["drill", "garden hose"], ["cordless drill kit", "a longer product title to trace the graph with"], reranker.max_length)
    return export_model(
        reranker.model, reranker.tokenizer, {name: example[name] for name in PAIR_INPUTS}, LOGIT_OUTPUT, out_dir, int8,
        {"kind": CROSS_ENCODER_KIND, "source": source, "max_length": reranker.max_length},
    )


def is_cross_encoder_artifact(path: Path | str) -> bool:
    """Whether ``path`` is a cross-encoder artifact (a version folder or a model root)."""
    from shelfwise import artifacts

    try:
        return artifacts.load(path).config.get("kind") == "cross-encoder"
    except FileNotFoundError:
        return False


def load_reranker(folder: Path | str, top_n: int = 20, threads: int = 0, first_stage_weight: float = 0.0) -> RerankerBase:
    """The reranker in ``folder``: an ONNX export (``search export-onnx --model CE_DIR``, a folder with
    ``model.onnx``) through ONNX Runtime, or a cross-encoder artifact (``search finetune --target
    cross-encoder --out``) in torch. Anything else is an error naming the folder and what it lacks.
    ``first_stage_weight``: see :attr:`RerankerBase.first_stage_weight`."""
    from shelfwise.encoders.onnx import EXPORT_CONFIG, FP32_FILE, is_onnx_export

    folder = Path(folder)
    if is_onnx_export(folder):
        reranker = OnnxReranker(folder, top_n=top_n, threads=threads)
    elif (folder / "config.json").is_file() or (folder / "latest").is_file():
        reranker = Reranker.from_artifact(folder, top_n=top_n)
    else:
        raise FileNotFoundError(
            f"{folder}: not a reranker: neither a cross-encoder artifact (no config.json or latest; make one with "
            f"`shelfwise search finetune --target cross-encoder --out {folder}`) nor an ONNX cross-encoder export "
            f"(no {FP32_FILE} and {EXPORT_CONFIG}; make one with `shelfwise search export-onnx --model CE_DIR --out {folder}`)"
        )
    reranker.first_stage_weight = first_stage_weight
    return reranker
