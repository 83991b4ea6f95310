"""How a sequence model represents an item: its own learned ID vector, its text, or both.

``item_repr`` (a field of the SASRec / GRU4Rec configs):

* ``"id"`` (default): a learned vector per item (``nn.Embedding``), as before. An item never seen in
  training keeps a meaningless vector.
* ``"text"``: a learned linear projection of the item's frozen MiniLM text vector (384 -> hidden).
  Items with similar text get similar vectors, so an item with no history gets a sensible score the
  moment its text is known.
* ``"text+id"``: the projection plus an ID vector (``fusion="sum"``) or a learned per-dimension gate
  between them (``fusion="gated"``). Items that never occur in training have no ID part (it is zeroed),
  so they are scored by their text alone instead of by an ID vector the softmax only ever pushed down.
  ``id_dropout`` (default ``ID_DROPOUT``) drops the ID part of a random share of the items in each training
  batch, so the model also learns to rank items that have only their text.

The same table is the input embedding and the (tied) output matrix, so every item in the catalogue,
cold or not, is scored. The text vectors are a buffer saved with the weights: a loaded model scores
without the encoder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

ITEM_REPRS = ("id", "text", "text+id")
FUSIONS = ("sum", "gated")
# text+id: without dropping ID parts in training, a cold item (text only) ranked under every warm item
# (text + ID) and the transitions' boost: cold HR@10 0 on amazon_scientific with 10 % of the items held
# out; 0.3 gave 0.0167 (7x random) at equal validation NDCG@10 (docs/benchmarks.md, "Text-aware items").
ID_DROPOUT = 0.3


def item_embedding(n_items: int, hidden: int, item_repr: str = "id", text_dim: int = 384, fusion: str = "sum",
                   id_dropout: float = ID_DROPOUT) -> nn.Module:
    """The item table of a model: a plain ``nn.Embedding`` for ``"id"`` (so ID-only models, their
    saved weights and their seeded runs are exactly what they were), else a ``TextItemEmbedding``."""
    if item_repr not in ITEM_REPRS:
        raise ValueError(f"unknown item_repr {item_repr!r}; choose one of {list(ITEM_REPRS)}")
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {list(FUSIONS)}")
    if item_repr == "id":
        return nn.Embedding(n_items + 1, hidden, padding_idx=0)
    return TextItemEmbedding(n_items, hidden, with_id=item_repr == "text+id", text_dim=text_dim, fusion=fusion, id_dropout=id_dropout)


class TextItemEmbedding(nn.Module):
    """Item vectors from frozen text vectors (projected), optionally fused with ID vectors.
    Row 0 (padding) is always zero. Behaves like ``nn.Embedding``: call it with item indexes, read
    ``.weight`` for the whole table."""

    def __init__(self, n_items: int, hidden: int, with_id: bool, text_dim: int = 384, fusion: str = "sum", id_dropout: float = ID_DROPOUT):
        super().__init__()
        # text+id, training only: the share of items whose ID part is dropped each time the table is built (input
        # and output tables draw separately), so the model also learns to score items by their text alone, as it
        # must for a cold item.
        self.id_dropout = id_dropout
        # Filled by ``set_item_text`` before training; saved with the weights so a loaded model needs no encoder.
        self.register_buffer("text_vectors", torch.zeros(n_items + 1, text_dim))
        # The catalogue mean ``centred`` removed: items added after training are centred alike (add_items).
        self.register_buffer("text_mean", torch.zeros(text_dim))
        self.text_projection = nn.Linear(text_dim, hidden)
        self.id_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=0) if with_id else None
        # 1 for items that occur in training, 0 for the rest: a cold item's ID vector is never trained
        # as anything but a negative, so it is left out and the item is scored by its text.
        if with_id:
            self.register_buffer("has_id", torch.ones(n_items + 1, 1))
        self.gate = nn.Linear(2 * hidden, hidden) if with_id and fusion == "gated" else None
        for module in self.modules():  # the scale of the ID tables (std 0.02), whichever model holds this
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    @property
    def weight(self) -> torch.Tensor:
        """[n_items + 1, hidden]: the whole table, recomputed from the current parameters (cheap:
        one [n_items, 384] x [384, hidden] product per batch)."""
        table = self.text_projection(self.text_vectors)
        if self.id_embedding is not None:
            ids = self.id_embedding.weight * self.has_id
            if self.training and self.id_dropout:
                ids = ids * (torch.rand(len(ids), 1, device=ids.device) >= self.id_dropout)
            if self.gate is not None:
                g = torch.sigmoid(self.gate(torch.cat([table, ids], dim=-1)))
                table = g * table + (1 - g) * ids
            else:
                table = table + ids
        return torch.cat([torch.zeros_like(table[:1]), table[1:]])  # padding stays zero

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        return self.weight[item_ids]

    @torch.no_grad()
    def add_items(self, vectors: np.ndarray) -> None:
        """Rows for new items after the last one, from their text vectors ``[m, text_dim]`` (as the encoder gives
        them): centred like the training catalogue and without an ID part, as a cold item, so the model scores
        them by their text at once. Nothing is trained."""
        rows = torch.from_numpy(centred(np.asarray(vectors, dtype=np.float32), self.text_mean.numpy(), padding=False))
        self.text_vectors = torch.cat([self.text_vectors, rows])
        if self.id_embedding is not None:
            old = self.id_embedding
            self.id_embedding = nn.Embedding(old.num_embeddings + len(rows), old.embedding_dim, padding_idx=0)
            self.id_embedding.weight.copy_(torch.cat([old.weight, old.weight.new_zeros(len(rows), old.embedding_dim)]))
            self.has_id = torch.cat([self.has_id, self.has_id.new_zeros(len(rows), 1)])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Saved before the mean was kept: new items are then added without centring (rows unit length still).
        state_dict.setdefault(prefix + "text_mean", torch.zeros_like(self.text_mean))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def text_table(model: nn.Module) -> TextItemEmbedding | None:
    """The model's text-aware item table, or None for a model whose items are IDs only."""
    table = getattr(model, "item_embedding", None)
    return table if isinstance(table, TextItemEmbedding) else None


def set_item_text(model: nn.Module, vectors: np.ndarray | None, seen_items: np.ndarray | None = None) -> None:
    """Give a text-aware model its frozen item text vectors ``[n_items + 1, text_dim]`` (row 0 = padding; kept
    :func:`centred`), and, for ``text+id``, which items occur in training (``seen_items``: item indexes). No-op
    for ID models."""
    table = text_table(model)
    if table is None:
        return
    if vectors is None:
        raise ValueError(f"item_repr={model.config.item_repr!r} needs item text vectors; none were given "
                         "(the data has no item text: use item_repr='id')")
    vectors = np.asarray(vectors, dtype=np.float32)
    if tuple(vectors.shape) != tuple(table.text_vectors.shape):
        raise ValueError(f"item text vectors have shape {tuple(vectors.shape)}, the model expects {tuple(table.text_vectors.shape)}")
    with torch.no_grad():
        mean = vectors[1:].mean(0)
        table.text_vectors.copy_(torch.from_numpy(centred(vectors, mean)))
        table.text_mean.copy_(torch.from_numpy(mean))
        if seen_items is not None and table.id_embedding is not None:
            table.has_id.zero_()
            table.has_id[torch.as_tensor(np.unique(seen_items))] = 1.0


def centred(vectors: np.ndarray, mean: np.ndarray, padding: bool = True) -> np.ndarray:
    """Unit rows after removing ``mean`` (the catalogue's mean vector); with ``padding``, row 0 is the padding
    row and stays zero. MiniLM's item vectors share one large common direction (mean cosine 0.23 between
    amazon_scientific items, 0.86 after LoRA tuning on its sequences), which leaves the differences between items
    small next to the projection's initial weights; centred, text-only validation NDCG@10 rose 0.0863 -> 0.0883
    (docs/benchmarks.md)."""
    out = np.zeros_like(vectors)
    start = 1 if padding else 0
    rest = vectors[start:] - mean
    out[start:] = rest / np.maximum(np.linalg.norm(rest, axis=1, keepdims=True), 1e-12)
    return out


def as_texts(texts: Sequence) -> list[str]:
    """Item texts with a missing one (NaN, None) read as no text."""
    return [t if isinstance(t, str) else "" for t in texts]


def encode_item_texts(texts: Sequence[str], cache_dir: Path | str | None = None, progress: bool = True,
                      encoder_artifact: Path | None = None) -> np.ndarray:
    """float32 [len(texts) + 1, 384]: the MiniLM vector of item index i at row i (texts[i - 1]), row 0 zero
    (padding); the pretrained encoder, or the fine-tuned one saved at ``encoder_artifact`` (a version folder,
    e.g. one adapted by ``text_tuning``). Cached as ``.npy`` under ``cache_dir`` keyed by the encoder and the
    texts, so a catalogue is encoded once (and the encoder only loaded when it must encode)."""
    from shelfwise.encoders.text import BASE_MODEL_NAME, EMBEDDING_DIM, TextEncoder

    texts = as_texts(texts)
    encoder_id = f"{encoder_artifact.parent.name}/{encoder_artifact.name}" if encoder_artifact is not None else BASE_MODEL_NAME
    key = hashlib.sha256("\x1f".join([encoder_id, *texts]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"item-text-{key}.npy" if cache_dir else None
    if path is not None and path.exists():
        return np.load(path)
    encoder = TextEncoder.from_artifact(encoder_artifact) if encoder_artifact is not None else TextEncoder()
    vectors = np.vstack([np.zeros((1, EMBEDDING_DIM), np.float32), encoder.encode(texts, progress=progress)]).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)  # never a half-written cache file
    return vectors
