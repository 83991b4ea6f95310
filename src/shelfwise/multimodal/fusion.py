"""Fusion of a product's name, photo and attributes into one item vector.

Each modality is projected to ``dim`` and becomes one token; a fusion method (from
:data:`FUSIONS`) turns the tokens that are present into the item vector:

* ``concat``: concatenation (an absent modality is a learned "missing" vector) and an MLP;
* ``gated``: a softmax gate over the present modalities weighs their tokens (the model learns when
  to trust the photo over the name);
* ``cross_attention``: a learned item token attends over the present modality tokens
  (a transformer layer; absent tokens are masked out).

The model is trained to predict catalogue labels (article type, colour) from the fused vector,
with whole modalities dropped at random during training, so products with no photo or no name
still get a useful vector.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from shelfwise.multimodal.labels import UNKNOWN, encode_labels

MODALITIES = ("image", "text", "attributes")


@dataclass
class FusionConfig:
    method: str = "gated"
    dim: int = 256
    image_dim: int = 1280
    text_dim: int = 384
    attention_heads: int = 4
    dropout: float = 0.1
    # Strong dropout on the inputs: with ~2k photos a 1280-d photo vector identifies its training
    # item, and a model that memorises photos learns to ignore the name.
    input_dropout: float = 0.5
    modality_dropout: float = 0.3  # chance of hiding each modality of a training example
    attribute_fields: tuple[str, ...] = ("gender", "season", "usage")
    targets: tuple[str, ...] = ("articleType", "baseColour")


class ConcatFusion(nn.Module):
    def __init__(self, c: FusionConfig):
        super().__init__()
        self.missing = nn.Parameter(torch.zeros(len(MODALITIES), c.dim))
        self.mlp = nn.Sequential(nn.Linear(len(MODALITIES) * c.dim, c.dim), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.dim, c.dim))

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        tokens = torch.where(present.unsqueeze(-1), tokens, self.missing.expand_as(tokens))
        return self.mlp(tokens.flatten(1))


class GatedFusion(nn.Module):
    def __init__(self, c: FusionConfig):
        super().__init__()
        # A gate per modality, reading every token: how much to trust the photo depends on the name.
        self.gate = nn.Linear(len(MODALITIES) * c.dim, len(MODALITIES))
        self.value = nn.Linear(c.dim, c.dim)
        self.norm = nn.LayerNorm(c.dim)

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        visible = tokens * present.unsqueeze(-1)
        logits = self.gate(visible.flatten(1)).masked_fill(~present, float("-inf"))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # all absent -> zeros, not NaN
        return self.norm((weights.unsqueeze(-1) * torch.tanh(self.value(tokens))).sum(1))


class CrossAttentionFusion(nn.Module):
    def __init__(self, c: FusionConfig):
        super().__init__()
        self.item_token = nn.Parameter(torch.randn(1, 1, c.dim) * 0.02)
        self.modality = nn.Parameter(torch.randn(1, len(MODALITIES), c.dim) * 0.02)
        self.layer = nn.TransformerEncoderLayer(
            c.dim, c.attention_heads, dim_feedforward=2 * c.dim, dropout=c.dropout, batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(c.dim)

    def forward(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.item_token.expand(len(tokens), -1, -1), tokens + self.modality], dim=1)
        keep = torch.cat([present.new_ones(len(tokens), 1), present], dim=1)
        return self.norm(self.layer(x, src_key_padding_mask=~keep)[:, 0])


# method name -> class; add a method by adding an entry.
FUSIONS: dict[str, Callable[[FusionConfig], nn.Module]] = {
    "concat": ConcatFusion,
    "gated": GatedFusion,
    "cross_attention": CrossAttentionFusion,
}


class FusionModel(nn.Module):
    def __init__(self, c: FusionConfig, attribute_sizes: Mapping[str, int], target_sizes: Mapping[str, int]):
        super().__init__()
        if c.method not in FUSIONS:
            raise ValueError(f"unknown fusion {c.method!r}; expected one of {sorted(FUSIONS)}")
        self.config = c
        self.image = nn.Sequential(nn.Dropout(c.input_dropout), nn.Linear(c.image_dim, c.dim), nn.GELU(), nn.LayerNorm(c.dim))
        self.text = nn.Sequential(nn.Dropout(c.input_dropout), nn.Linear(c.text_dim, c.dim), nn.GELU(), nn.LayerNorm(c.dim))
        # Row 0 of each table is "unknown", so a missing field adds a learned vector, not a crash.
        self.attribute_tables = nn.ModuleDict({k: nn.Embedding(n + 1, c.dim) for k, n in attribute_sizes.items()})
        self.fusion = FUSIONS[c.method](c)
        self.heads = nn.ModuleDict({k: nn.Linear(c.dim, n) for k, n in target_sizes.items()})

    def forward(self, image: torch.Tensor, text: torch.Tensor, attributes: Mapping[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        """-> [b, dim] item vectors. ``present`` [b, 3] bool: image, text, attributes."""
        attribute_token = sum(table(attributes[k] + 1) for k, table in self.attribute_tables.items()) if self.attribute_tables else image.new_zeros(len(image), self.config.dim)
        tokens = torch.stack([self.image(image), self.text(text), attribute_token], dim=1)
        return self.fusion(tokens, present)


@dataclass
class ItemInputs:
    """Per item: photo features [n, 1280], name embeddings [n, 384], attribute codes, and which exist."""

    image: np.ndarray
    text: np.ndarray
    attributes: dict[str, np.ndarray]
    present: np.ndarray  # [n, 3] bool

    @staticmethod
    def concat(parts: Sequence["ItemInputs"]) -> "ItemInputs":
        return ItemInputs(
            np.concatenate([p.image for p in parts]),
            np.concatenate([p.text for p in parts]),
            {k: np.concatenate([p.attributes[k] for p in parts]) for k in parts[0].attributes},
            np.concatenate([p.present for p in parts]),
        )

    def rows(self, idx) -> "ItemInputs":
        return ItemInputs(self.image[idx], self.text[idx], {k: v[idx] for k, v in self.attributes.items()}, self.present[idx])

    def tensors(self):
        return (
            torch.from_numpy(self.image),
            torch.from_numpy(self.text),
            {k: torch.from_numpy(v) for k, v in self.attributes.items()},
            torch.from_numpy(self.present),
        )


class FusionTask:
    """Label prediction from the fused vector, with random modality dropout (a training loop Task)."""

    def __init__(self, inputs: ItemInputs, labels: dict[str, np.ndarray], valid, batch_size: int, config: FusionConfig):
        self.inputs, self.labels, self.valid, self.batch_size, self.config = inputs, labels, valid, batch_size, config

    def batches(self, epoch: int, rng: np.random.Generator):
        n = len(self.inputs.present)
        order = rng.permutation(n)
        hide = rng.random((n, len(MODALITIES))) < self.config.modality_dropout
        return [(order[s : s + self.batch_size], hide[order[s : s + self.batch_size]]) for s in range(0, n, self.batch_size)]

    def loss(self, model: FusionModel, batch) -> torch.Tensor:
        idx, hide = batch
        image, text, attributes, present = self.inputs.rows(idx).tensors()
        present = present & ~torch.from_numpy(hide)
        # Never hide everything an item has: keep its first present modality.
        empty = ~present.any(1)
        if empty.any():
            original = torch.from_numpy(self.inputs.present[idx])
            first = original.float().argmax(1)
            present[empty, first[empty]] = original[empty, first[empty]]
        fused = model(image, text, attributes, present)
        losses = [F.cross_entropy(model.heads[k](fused), torch.from_numpy(y[idx]), ignore_index=UNKNOWN) for k, y in self.labels.items()]
        return torch.stack(losses).mean()

    def evaluate(self, model: FusionModel) -> dict[str, float]:
        inputs, labels = self.valid
        fused = model(*inputs.tensors())
        accuracies = {k: _accuracy(model.heads[k](fused), y) for k, y in labels.items()}
        return {"accuracy": float(np.mean(list(accuracies.values()))), **{f"{k}_accuracy": v for k, v in accuracies.items()}}


def _accuracy(logits: torch.Tensor, codes: np.ndarray) -> float:
    known = codes != UNKNOWN
    return float((logits.argmax(-1).numpy()[known] == codes[known]).mean()) if known.any() else float("nan")


class ItemFuser:
    """Fit a fusion model on items with labels; ``transform`` gives one vector per item, ``predict`` its labels.

    Any of ``image`` / ``text`` may be ``None`` (or have rows marked absent with ``image_ok`` /
    ``text_ok``): the item vector is then made from what is there.
    """

    def __init__(self, config: FusionConfig | None = None, train_config=None, vocabs: Mapping[str, Sequence[str]] | None = None):
        from shelfwise.training.loop import TrainConfig

        self.config = config or FusionConfig()
        self.train_config = train_config or TrainConfig(
            epochs=30, batch_size=128, lr=1e-3, weight_decay=0.05, warmup_steps=20, metric="accuracy", patience=6, progress=False
        )
        wanted = set(self.config.attribute_fields) | set(self.config.targets)
        self.vocabs = {k: list(v) for k, v in (vocabs or {}).items() if k in wanted}
        missing = wanted - set(self.vocabs)
        if missing:
            raise ValueError(f"no vocabulary for {sorted(missing)}")
        self.model: FusionModel | None = None
        self.result = None

    def inputs(
        self,
        image: np.ndarray | None,
        text: np.ndarray | None,
        attributes: Mapping[str, Sequence] | None = None,
        image_ok: np.ndarray | None = None,
        text_ok: np.ndarray | None = None,
    ) -> ItemInputs:
        c = self.config
        n = len(image) if image is not None else len(text) if text is not None else len(next(iter((attributes or {}).values())))
        image_arr = np.zeros((n, c.image_dim), np.float32) if image is None else np.asarray(image, np.float32)
        text_arr = np.zeros((n, c.text_dim), np.float32) if text is None else np.asarray(text, np.float32)
        codes = {
            k: encode_labels(attributes[k], self.vocabs[k]) if attributes and k in attributes else np.full(n, UNKNOWN, np.int64)
            for k in c.attribute_fields
        }
        has_attributes = np.zeros(n, bool)
        for v in codes.values():
            has_attributes |= v != UNKNOWN
        present = np.stack(
            [
                (np.ones(n, bool) if image is not None else np.zeros(n, bool)) & (np.ones(n, bool) if image_ok is None else np.asarray(image_ok, bool)),
                (np.ones(n, bool) if text is not None else np.zeros(n, bool)) & (np.ones(n, bool) if text_ok is None else np.asarray(text_ok, bool)),
                has_attributes,
            ],
            axis=1,
        )
        return ItemInputs(image_arr, text_arr, codes, present)

    def _targets(self, labels: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
        return {k: encode_labels(labels[k], self.vocabs[k]) for k in self.config.targets if k in labels}

    def fit(self, inputs: ItemInputs, labels: Mapping[str, Sequence], valid: tuple[ItemInputs, Mapping[str, Sequence]]) -> "ItemFuser":
        """Train on ``inputs`` (items may lack any modality, e.g. names of products without a photo)
        with their ``labels``; early stopping on accuracy over ``valid``."""
        from shelfwise.training.loop import train

        torch.manual_seed(self.train_config.seed)
        self.model = FusionModel(
            self.config,
            {k: len(self.vocabs[k]) for k in self.config.attribute_fields},
            {k: len(self.vocabs[k]) for k in self.config.targets},
        )
        task = FusionTask(inputs, self._targets(labels), (valid[0], self._targets(valid[1])), self.train_config.batch_size, self.config)
        self.result = train(self.model, task, self.train_config)
        self.model.eval()
        return self

    def _check(self) -> FusionModel:
        if self.model is None:
            raise RuntimeError("the fuser is not fitted; call fit() or load an artifact")
        return self.model.eval()

    @torch.no_grad()
    def transform(self, inputs: ItemInputs) -> np.ndarray:
        """[n, dim] unit item vectors."""
        return F.normalize(self._check()(*inputs.tensors()), dim=-1).numpy()

    @torch.no_grad()
    def predict(self, inputs: ItemInputs) -> dict[str, np.ndarray]:
        model = self._check()
        fused = model(*inputs.tensors())
        return {k: np.asarray(self.vocabs[k], dtype=object)[head(fused).argmax(-1).numpy()] for k, head in model.heads.items()}

    def accuracy(self, inputs: ItemInputs, labels: Mapping[str, Sequence]) -> dict[str, float]:
        predicted = self.predict(inputs)
        return {k: float(np.mean(predicted[k] == np.asarray(labels[k], dtype=object))) for k in predicted if k in labels}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self._check().state_dict())

    def config_dict(self) -> dict:
        return {"config": asdict(self.config), "vocabs": self.vocabs}

    @classmethod
    def from_state(cls, config: dict, state: Mapping[str, torch.Tensor]) -> "ItemFuser":
        c = dict(config["config"])
        c["attribute_fields"], c["targets"] = tuple(c["attribute_fields"]), tuple(c["targets"])
        fuser = cls(FusionConfig(**c), vocabs=config["vocabs"])
        fuser.model = FusionModel(
            fuser.config,
            {k: len(fuser.vocabs[k]) for k in fuser.config.attribute_fields},
            {k: len(fuser.vocabs[k]) for k in fuser.config.targets},
        )
        fuser.model.load_state_dict(dict(state), strict=True)
        fuser.model.eval()
        return fuser
