"""SASRec (Kang & McAuley, 2018): a causal Transformer over the user's item sequence.

Trained on whole sequences at once: the hidden state at position t predicts item t + 1, so
one forward pass yields a training target at every position (instead of one row per prefix).
Scores come from the last position against the item embedding table (weight-tied output).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shelfwise.recommenders.item_repr import ID_DROPOUT, item_embedding


@dataclass
class SASRecConfig:
    n_items: int = 0  # item indexes are 1..n_items; 0 is padding
    max_len: int = 50
    hidden: int = 128
    layers: int = 2
    heads: int = 2
    inner: int = 256  # feed-forward width
    dropout: float = 0.5
    attention_dropout: float = 0.5
    item_repr: str = "id"  # "id", "text" or "text+id": see item_repr.py
    text_dim: int = 384  # size of the frozen item text vectors (MiniLM)
    fusion: str = "sum"  # text+id: "sum" or "gated"
    id_dropout: float = ID_DROPOUT  # text+id: share of items trained without their ID part per batch (see item_repr.py)


class Block(nn.Module):
    """Pre-norm Transformer block; ``mask`` is True where a query may attend to a key."""

    def __init__(self, c: SASRecConfig):
        super().__init__()
        self.heads = c.heads
        self.attention_dropout = c.attention_dropout
        self.norm1 = nn.LayerNorm(c.hidden)
        self.qkv = nn.Linear(c.hidden, 3 * c.hidden)
        self.proj = nn.Linear(c.hidden, c.hidden)
        self.norm2 = nn.LayerNorm(c.hidden)
        self.ff = nn.Sequential(nn.Linear(c.hidden, c.inner), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.inner, c.hidden))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, length, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class SASRec(nn.Module):
    objective = "next"  # trained to predict the next item at every position

    def __init__(self, config: SASRecConfig):
        super().__init__()
        self.config = c = config
        self.item_embedding = item_embedding(c.n_items, c.hidden, c.item_repr, c.text_dim, c.fusion, c.id_dropout)
        self.position_embedding = nn.Embedding(c.max_len, c.hidden)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.hidden)
        self.apply(_init)
        if c.item_repr == "id":  # a text-aware table keeps its padding row at zero itself
            with torch.no_grad():
                self.item_embedding.weight[0].zero_()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids`` [batch, length], left-padded with 0 -> hidden states [batch, length, hidden]."""
        _, length = input_ids.shape
        # Positions count back from the last item, so the latest item always gets the same position.
        positions = torch.arange(self.config.max_len - length, self.config.max_len, device=input_ids.device)
        x = self.item_embedding(input_ids) * self.config.hidden**0.5 + self.position_embedding(positions)
        x = self.drop(x)
        valid = input_ids > 0
        causal = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()
        # A padding query sees only itself: a row with nothing to attend to would give NaN.
        mask = (causal & valid[:, None, None, :]) | torch.eye(length, dtype=torch.bool, device=input_ids.device)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)

    def output_embeddings(self) -> torch.Tensor:
        """[n_items + 1, hidden]: the item table, tied to the input embedding (ID, text or both)."""
        return self.item_embedding.weight


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
