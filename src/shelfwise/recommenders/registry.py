"""Recommenders by name: one table instead of if-chains. A neural entry pairs a model class
with its config dataclass; ``build_model`` makes one for a catalogue size."""

from __future__ import annotations

from dataclasses import fields

from torch import nn

from shelfwise.recommenders.baselines import ItemTransitions, Popularity
from shelfwise.recommenders.bert4rec import BERT4Rec, BERT4RecConfig
from shelfwise.recommenders.gru4rec import GRU4Rec, GRU4RecConfig, LSTMRec
from shelfwise.recommenders.sasrec import SASRec, SASRecConfig

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "sasrec": (SASRec, SASRecConfig),
    "gru4rec": (GRU4Rec, GRU4RecConfig),
    "lstm": (LSTMRec, GRU4RecConfig),
    "bert4rec": (BERT4Rec, BERT4RecConfig),
}
BASELINES = {"popularity": Popularity, "transitions": ItemTransitions}
DEFAULT_MODEL = "sasrec"


def names() -> list[str]:
    return sorted(MODELS) + sorted(BASELINES)


def build_model(name: str, n_items: int, **overrides) -> nn.Module:
    """A fresh model; ``overrides`` set fields of its config (unknown fields are an error)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    model_class, config_class = MODELS[name]
    known = {f.name for f in fields(config_class)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"{name} has no setting(s) {sorted(unknown)}; it has {sorted(known - {'n_items'})}")
    return model_class(config_class(**{**overrides, "n_items": n_items}))
