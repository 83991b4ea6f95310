"""BERT4Rec (Sun et al., 2019): a bidirectional Transformer trained to recover masked items.
At inference a mask token is appended to the history and its output scores the next item."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shelfwise.recommenders.sasrec import Block, SASRecConfig, _init


@dataclass
class BERT4RecConfig:
    n_items: int = 0
    max_len: int = 50
    hidden: int = 128
    layers: int = 2
    heads: int = 2
    inner: int = 256
    dropout: float = 0.2
    attention_dropout: float = 0.2
    mask_ratio: float = 0.2  # share of training positions replaced by the mask token


class BERT4Rec(nn.Module):
    objective = "masked"

    def __init__(self, config: BERT4RecConfig):
        super().__init__()
        self.config = c = config
        self.mask_token = c.n_items + 1
        self.item_embedding = nn.Embedding(c.n_items + 2, c.hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(c.max_len, c.hidden)
        self.drop = nn.Dropout(c.dropout)
        block_config = SASRecConfig(n_items=c.n_items, max_len=c.max_len, hidden=c.hidden, layers=c.layers, heads=c.heads,
                                    inner=c.inner, dropout=c.dropout, attention_dropout=c.attention_dropout)
        self.blocks = nn.ModuleList(Block(block_config) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.hidden)
        self.apply(_init)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[batch, length] left-padded, masked positions = ``mask_token`` -> [batch, length, hidden]."""
        b, length = input_ids.shape
        positions = torch.arange(self.config.max_len - length, self.config.max_len, device=input_ids.device)
        x = self.drop(self.item_embedding(input_ids) * self.config.hidden**0.5 + self.position_embedding(positions))
        valid = input_ids > 0
        mask = valid[:, None, None, :] | torch.eye(length, dtype=torch.bool, device=input_ids.device)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)

    def output_embeddings(self) -> torch.Tensor:
        """[n_items + 1, hidden]: the mask token is never an answer."""
        return self.item_embedding.weight[: self.config.n_items + 1]
