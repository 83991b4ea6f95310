"""GRU4Rec (Hidasi et al., 2016) and its LSTM variant: a recurrent network over the item
sequence, trained like SASRec on whole sequences (the state after item t predicts item t + 1).
The recurrent state is projected back to the embedding size so the output layer is the
(weight-tied) item table."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from shelfwise.recommenders.item_repr import ID_DROPOUT, item_embedding


@dataclass
class GRU4RecConfig:
    n_items: int = 0
    max_len: int = 50
    hidden: int = 128  # item embedding size (and output size)
    state: int = 256  # recurrent state size
    layers: int = 1
    dropout: float = 0.3
    item_repr: str = "id"  # "id", "text" or "text+id": see item_repr.py
    text_dim: int = 384
    fusion: str = "sum"
    id_dropout: float = ID_DROPOUT


class _Recurrent(nn.Module):
    objective = "next"
    cell: type[nn.Module] = nn.GRU

    def __init__(self, config: GRU4RecConfig):
        super().__init__()
        self.config = c = config
        self.item_embedding = item_embedding(c.n_items, c.hidden, c.item_repr, c.text_dim, c.fusion, c.id_dropout)
        self.drop = nn.Dropout(c.dropout)
        self.rnn = self.cell(c.hidden, c.state, num_layers=c.layers, batch_first=True, dropout=c.dropout if c.layers > 1 else 0.0)
        self.out = nn.Linear(c.state, c.hidden)
        self.norm = nn.LayerNorm(c.hidden)
        if c.item_repr == "id":  # a text-aware table initialises itself and keeps its padding row at zero
            nn.init.normal_(self.item_embedding.weight, std=0.02)
            with torch.no_grad():
                self.item_embedding.weight[0].zero_()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[batch, length] left-padded -> [batch, length, hidden]. Rows are packed so the
        recurrence starts at each row's first real item, whatever the padding."""
        b, length = input_ids.shape
        lengths = (input_ids > 0).sum(1).clamp(min=1)
        # Left-padded -> right-padded: shift each row left by its padding.
        shift = length - lengths
        index = (torch.arange(length, device=input_ids.device)[None, :] + shift[:, None]) % length
        right = input_ids.gather(1, index)
        x = self.drop(self.item_embedding(right))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        y, _ = self.rnn(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=length)
        y = self.norm(self.out(self.drop(y)))
        back = (torch.arange(length, device=input_ids.device)[None, :] - shift[:, None]) % length
        return y.gather(1, back[:, :, None].expand(-1, -1, y.shape[-1]))

    def output_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight


class GRU4Rec(_Recurrent):
    cell = nn.GRU


class LSTMRec(_Recurrent):
    """The same model with an LSTM cell."""

    cell = nn.LSTM
