"""Text <-> image alignment: two projections that map frozen photo features (EfficientNet-Lite0,
1280-d) and frozen name embeddings (MiniLM, 384-d) into one space, trained with a symmetric
contrastive loss (CLIP's InfoNCE) on (photo, product name) pairs.

A shop has few photos (here ~1,800 for training), so two things stop the projections from
memorising them:

* attribute heads shared by both modalities: the same linear classifier must read the article
  type, colour and gender from a photo's embedding and from a name's embedding, which ties the
  space to what a query can actually say;
* names without photos (the rest of the catalogue) train the text side through those heads, so
  the text projection sees tens of thousands of names instead of the ~1,800 paired ones;

plus input dropout and mirrored photos as augmentation. The benchmark measures each of these.

Frozen photo features cap what the heads can read (ImageNet features, 60x80 photos). Given a
:class:`shelfwise.encoders.image.BackboneTail` and photos as cached trunk activations
(:class:`TrunkInputs`), the aligner also fine-tunes the backbone's last blocks with the same
objective; the tuned backbone then belongs to the image encoder that serves the model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from shelfwise.multimodal.labels import UNKNOWN, encode_labels


@dataclass
class AlignmentConfig:
    image_dim: int = 1280
    text_dim: int = 384
    dim: int = 256  # the shared space
    image_hidden: int = 1024  # 0 = a linear projection
    text_hidden: int = 1024
    input_dropout: float = 0.2  # on the frozen features: cheap augmentation
    dropout: float = 0.1
    temperature: float = 0.05  # initial; learned
    attribute_weight: float = 0.5  # weight of the shared attribute heads (0 = contrastive only)
    extra_text_weight: float = 0.5  # weight of names without photos (through the heads)
    extra_text_batch: int = 256
    attributes: tuple[str, ...] = ("articleType", "baseColour", "gender")
    # The heads read the unit embedding times this (a cosine classifier): a unit vector alone
    # cannot give confident logits without huge weights, which weight decay prevents.
    head_scale: float = 10.0
    # Retrieval vector = [shared embedding ; sqrt(p(class)) per attribute], weighted: the inner
    # product adds the Bhattacharyya agreement of the two sides' attribute predictions ("both a
    # black belt") to the cosine. Weights are chosen on validation pairs after training (tune_weights).
    retrieval_weights: dict[str, float] = field(default_factory=dict)


def projection(in_dim: int, hidden: int, out_dim: int, input_dropout: float, dropout: float) -> nn.Module:
    if not hidden:
        return nn.Sequential(nn.Dropout(input_dropout), nn.Linear(in_dim, out_dim))
    return nn.Sequential(
        nn.Dropout(input_dropout), nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
    )


@dataclass
class TrunkInputs:
    """Photos as cached backbone trunk activations [n, C, H, W] or [n, views, C, H, W] (float16),
    with optional colour histograms [n, (views,) K] appended to the tuned tail's features (as
    ``ImageEncoder(colour_bins=...)`` appends them): the photo inputs for fine-tuning."""

    activations: np.ndarray
    colours: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.activations)

    def take(self, rows, views) -> "TrunkInputs":
        return TrunkInputs(self.activations[rows, views], None if self.colours is None else self.colours[rows, views])


PhotoInputs = Union[np.ndarray, TrunkInputs]


class AlignmentModel(nn.Module):
    """Photo features and name embeddings -> unit vectors in one ``dim``-d space (+ attribute heads).
    With an ``image_tail``, photos may also come as :class:`TrunkInputs` and the tail is trained too."""

    def __init__(self, config: AlignmentConfig, n_classes: Mapping[str, int], image_tail: nn.Module | None = None):
        super().__init__()
        c = config
        self.config = c
        self.image_tail = image_tail
        self.image_proj = projection(c.image_dim, c.image_hidden, c.dim, c.input_dropout, c.dropout)
        self.text_proj = projection(c.text_dim, c.text_hidden, c.dim, c.input_dropout, c.dropout)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / c.temperature)))
        self.heads = nn.ModuleDict({name: nn.Linear(c.dim, n) for name, n in n_classes.items()})

    def photo_features(self, photos: PhotoInputs) -> torch.Tensor:
        """Photo features as given, or trunk activations through the trainable tail (+ colours)."""
        if not isinstance(photos, TrunkInputs):
            return torch.from_numpy(np.asarray(photos, dtype=np.float32))
        if self.image_tail is None:
            raise ValueError("trunk activations need an image tail to fine-tune; pass image_tail to the Aligner")
        features = self.image_tail(torch.from_numpy(photos.activations))
        return features if photos.colours is None else torch.cat([features, torch.from_numpy(photos.colours)], dim=-1)

    def embed_images(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(features), dim=-1)

    def embed_texts(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(features), dim=-1)

    def head_logits(self, emb: torch.Tensor, name: str) -> torch.Tensor:
        return self.heads[name](emb * self.config.head_scale)

    def retrieval_vectors(self, emb: torch.Tensor, weights: Mapping[str, float] | None = None) -> torch.Tensor:
        """Unit vectors [emb ; w_a * sqrt(p_a) ...] (see AlignmentConfig.retrieval_weights)."""
        weights = self.config.retrieval_weights if weights is None else weights
        parts = [emb]
        for name in self.heads:
            w = float(weights.get(name, 0.0))
            # Always present (zero-weighted when unused) so every vector has the same length.
            parts.append(w * self.head_logits(emb, name).softmax(-1).sqrt())
        return F.normalize(torch.cat(parts, dim=-1), dim=-1)

    def contrastive_loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE: each photo must pick its own name among the batch's, and vice versa."""
        scale = self.logit_scale.clamp(max=math.log(100)).exp()
        logits = scale * image_emb @ text_emb.T
        target = torch.arange(len(logits), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    def attribute_loss(self, emb: torch.Tensor, labels: Mapping[str, torch.Tensor]) -> torch.Tensor:
        losses = [
            F.cross_entropy(self.head_logits(emb, name), y, ignore_index=UNKNOWN)
            for name, y in labels.items()
            if name in self.heads and (y != UNKNOWN).any()
        ]
        return torch.stack(losses).mean() if losses else emb.new_zeros(())


@dataclass
class PairData:
    """Training pairs: ``images`` [n, views, 1280] or trunk activations (view 0 the plain photo),
    ``texts`` [n, 384] and label codes per attribute; ``extra_texts`` [m, 384] names without
    photos, with their codes."""

    images: PhotoInputs
    texts: np.ndarray
    labels: dict[str, np.ndarray]
    extra_texts: np.ndarray | None = None
    extra_labels: dict[str, np.ndarray] = field(default_factory=dict)


def retrieval_recall(query: np.ndarray, target: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Share of queries whose own target (same row) is in the top k by inner product."""
    scores = torch.from_numpy(query) @ torch.from_numpy(target).T
    own = scores.diagonal().unsqueeze(1)
    # Rank = how many targets score strictly higher than the right one (ties favour the right one).
    rank = (scores > own).sum(1)
    return {k: float((rank < k).float().mean()) for k in ks}


class AlignmentTask:
    """The contrastive + attribute objective as a :class:`shelfwise.training.loop.Task`."""

    def __init__(self, train: PairData, valid: PairData | None, batch_size: int, config: AlignmentConfig):
        self.train, self.valid, self.batch_size, self.config = train, valid, batch_size, config
        self._evaluations = 0

    def batches(self, epoch: int, rng: np.random.Generator):
        n = len(self.train.texts)
        order = rng.permutation(n)
        views = rng.integers(0, _view_count(self.train.images), size=n)
        m = 0 if self.train.extra_texts is None else len(self.train.extra_texts)
        out = []
        for start in range(0, n - 1, self.batch_size):
            idx = order[start : start + self.batch_size]
            if len(idx) < 2:
                continue
            extra = rng.integers(0, m, size=self.config.extra_text_batch) if m and self.config.extra_text_weight else None
            out.append((idx, views[idx], extra))
        return out

    def loss(self, model: AlignmentModel, batch) -> torch.Tensor:
        idx, views, extra = batch
        d, c = self.train, self.config
        image_emb = model.embed_images(model.photo_features(take_photos(d.images, idx, views)))
        text_emb = model.embed_texts(torch.from_numpy(d.texts[idx]))
        loss = model.contrastive_loss(image_emb, text_emb)
        if c.attribute_weight:
            labels = {k: torch.from_numpy(v[idx]) for k, v in d.labels.items()}
            loss = loss + c.attribute_weight * 0.5 * (model.attribute_loss(image_emb, labels) + model.attribute_loss(text_emb, labels))
        if extra is not None:
            labels = {k: torch.from_numpy(v[extra]) for k, v in d.extra_labels.items()}
            loss = loss + c.extra_text_weight * model.attribute_loss(model.embed_texts(torch.from_numpy(d.extra_texts[extra])), labels)
        return loss

    def evaluate(self, model: AlignmentModel) -> dict[str, float]:
        if self.valid is None:
            # Nothing held out: a metric that always improves, so the loop keeps the last epoch.
            self._evaluations += 1
            return {"epochs_seen": float(self._evaluations)}
        image_emb = model.embed_images(model.photo_features(take_photos(self.valid.images, slice(None), 0)))
        images, texts = image_emb.numpy(), model.embed_texts(torch.from_numpy(self.valid.texts)).numpy()
        t2i, i2t = retrieval_recall(texts, images), retrieval_recall(images, texts)
        metrics = {"t2i_r@10": t2i[10], "t2i_r@1": t2i[1], "i2t_r@10": i2t[10], "r@10": 0.5 * (t2i[10] + i2t[10])}
        # Model selection also weighs how well photos show their attributes: the heads feed retrieval.
        accuracies = []
        for name, codes in self.valid.labels.items():
            known = codes != UNKNOWN
            if name in model.heads and known.any():
                predicted = model.head_logits(image_emb, name).argmax(-1).numpy()
                metrics[f"{name}_accuracy"] = float((predicted[known] == codes[known]).mean())
                accuracies.append(metrics[f"{name}_accuracy"])
        metrics["selection"] = metrics["r@10"] + (float(np.mean(accuracies)) if accuracies else 0.0)
        return metrics


def _view_count(images: PhotoInputs) -> int:
    return images.activations.shape[1] if isinstance(images, TrunkInputs) else images.shape[1]


def take_photos(images: PhotoInputs, rows, views) -> PhotoInputs:
    """``images[rows, views]`` for frozen features and trunk activations alike."""
    return images.take(rows, views) if isinstance(images, TrunkInputs) else images[rows, views]


class Aligner:
    """Fit projections on (photo features, name embeddings) pairs; map either side into the shared space.

    ``vocabs`` fixes the label classes per attribute (e.g. every article type of the catalogue).
    ``image_tail`` (a :class:`shelfwise.encoders.image.BackboneTail`) is fine-tuned with the
    projections when the photos are given as :class:`TrunkInputs`; afterwards
    :meth:`image_backbone_weights` are the weights of the image encoder that serves this aligner.
    """

    def __init__(
        self,
        config: AlignmentConfig | None = None,
        train_config=None,
        vocabs: Mapping[str, Sequence[str]] | None = None,
        image_tail: nn.Module | None = None,
    ):
        from shelfwise.training.loop import TrainConfig

        # A copy: fit() sets the retrieval weights on it, and configs are shared between runs.
        config = config or AlignmentConfig()
        self.config = replace(config, retrieval_weights=dict(config.retrieval_weights))
        self.train_config = train_config or TrainConfig(
            epochs=150, batch_size=256, lr=1e-3, weight_decay=0.05, warmup_steps=20, metric="selection", patience=20, progress=False
        )
        self.vocabs = {k: list(v) for k, v in (vocabs or {}).items() if k in self.config.attributes}
        self.image_tail = image_tail
        self.model: AlignmentModel | None = None
        self.result = None

    def _codes(self, labels: Mapping[str, Sequence] | None, n: int) -> dict[str, np.ndarray]:
        labels = labels or {}
        return {
            name: encode_labels(labels[name], vocab) if name in labels else np.full(n, UNKNOWN, dtype=np.int64)
            for name, vocab in self.vocabs.items()
        }

    @staticmethod
    def _views(images: PhotoInputs) -> PhotoInputs:
        """Add the views axis when there is a single view."""
        if isinstance(images, TrunkInputs):
            if images.activations.ndim == 5:
                return images
            return TrunkInputs(images.activations[:, None], None if images.colours is None else images.colours[:, None])
        images = np.asarray(images, dtype=np.float32)
        return images[:, None, :] if images.ndim == 2 else images

    def fit(
        self,
        images: PhotoInputs,
        texts: np.ndarray,
        labels: Mapping[str, Sequence] | None = None,
        extra_texts: np.ndarray | None = None,
        extra_labels: Mapping[str, Sequence] | None = None,
        valid: tuple[PhotoInputs, np.ndarray] | tuple[PhotoInputs, np.ndarray, Mapping[str, Sequence]] | None = None,
    ) -> "Aligner":
        """``images`` [n, 1280] or [n, views, 1280] features, or :class:`TrunkInputs` to fine-tune the
        image tail too; ``texts`` [n, 384]; ``labels`` attribute -> n values;
        ``valid`` (images, texts[, labels]) pairs for early stopping on Recall@10 (+ attribute accuracy)
        and for choosing the retrieval weights."""
        from shelfwise.training.loop import train

        images = self._views(images)
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} photos but {len(texts)} names")
        torch.manual_seed(self.train_config.seed)
        self.model = AlignmentModel(self.config, {k: len(v) for k, v in self.vocabs.items()}, self.image_tail)
        data = PairData(
            images=images,
            texts=np.asarray(texts, dtype=np.float32),
            labels=self._codes(labels, len(texts)),
            extra_texts=None if extra_texts is None else np.asarray(extra_texts, dtype=np.float32),
            extra_labels=self._codes(extra_labels, 0 if extra_texts is None else len(extra_texts)),
        )
        valid_data = None
        if valid is not None:
            valid_labels = self._codes(valid[2], len(valid[1])) if len(valid) > 2 else {}
            valid_data = PairData(images=self._views(valid[0]), texts=np.asarray(valid[1], dtype=np.float32), labels=valid_labels)
        task = AlignmentTask(data, valid_data, self.train_config.batch_size, self.config)
        config = self.train_config
        if valid_data is None:
            config = replace(config, patience=0, metric="epochs_seen")
        self.result = train(self.model, task, config)
        self.model.eval()
        if valid_data is not None and self.config.attribute_weight and not self.config.retrieval_weights:
            self.config.retrieval_weights = self.tune_weights(take_photos(valid_data.images, slice(None), 0), valid_data.texts)
        return self

    @torch.no_grad()
    def tune_weights(self, images: PhotoInputs, texts: np.ndarray, grid: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0)) -> dict[str, float]:
        """Attribute weights of the retrieval vectors that maximise text->image Recall@10 on these
        held-out pairs (ties: the smaller weights). A grid per attribute, one attribute at a time."""
        model = self._check().eval()
        image_emb = model.embed_images(model.photo_features(images))
        text_emb = model.embed_texts(torch.from_numpy(np.asarray(texts, np.float32)))

        def recall(weights) -> float:
            r = retrieval_recall(model.retrieval_vectors(text_emb, weights).numpy(), model.retrieval_vectors(image_emb, weights).numpy(), ks=(10,))
            return r[10]

        weights = {name: 0.0 for name in model.heads}
        best = recall(weights)
        for _ in range(2):  # two sweeps: the attributes interact a little
            for name in weights:
                for w in grid:
                    trial = {**weights, name: w}
                    value = recall(trial)
                    if value > best + 1e-9:
                        best, weights = value, trial
        return weights

    def _check(self) -> AlignmentModel:
        if self.model is None:
            raise RuntimeError("the aligner is not fitted; call fit() or load an artifact")
        return self.model

    @property
    def dim(self) -> int:
        """Length of the vectors :meth:`embed_images` / :meth:`embed_texts` return."""
        return self.config.dim + sum(len(v) for v in self.vocabs.values())

    @torch.no_grad()
    def embed_images(self, features: PhotoInputs, retrieval: bool = True) -> np.ndarray:
        """[n, 1280] photo features (from the encoder with :meth:`image_backbone_weights` when the
        tail was tuned) -> unit vectors in the shared space: [n, :attr:`dim`] retrieval vectors, or
        the [n, config.dim] embeddings alone with ``retrieval=False``."""
        model = self._check().eval()
        emb = model.embed_images(model.photo_features(features))
        return (model.retrieval_vectors(emb) if retrieval else emb).numpy()

    @torch.no_grad()
    def embed_texts(self, features: np.ndarray, retrieval: bool = True) -> np.ndarray:
        """[n, 384] MiniLM embeddings -> unit vectors in the shared space (as :meth:`embed_images`)."""
        model = self._check().eval()
        emb = model.embed_texts(torch.from_numpy(np.asarray(features, dtype=np.float32)))
        return (model.retrieval_vectors(emb) if retrieval else emb).numpy()

    @torch.no_grad()
    def predict_attribute(self, embeddings: np.ndarray, attribute: str) -> np.ndarray:
        """Labels (strings) read by the attribute head from ``embed_*(..., retrieval=False)`` embeddings of either modality."""
        model = self._check().eval()
        if attribute not in model.heads:
            raise KeyError(f"no head for {attribute!r}; have {sorted(model.heads)}")
        codes = model.head_logits(torch.from_numpy(np.asarray(embeddings, dtype=np.float32)), attribute).argmax(-1).numpy()
        return np.asarray(self.vocabs[attribute], dtype=object)[codes]

    def image_backbone_weights(self) -> dict[str, torch.Tensor] | None:
        """The fine-tuned image backbone's state dict (for ``ImageEncoder(weights=...)``); None if
        the photo features were frozen."""
        return None if self.image_tail is None else dict(self.image_tail.backbone.state_dict())

    # -- persistence (the caller writes these with shelfwise.artifacts) --
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The projections and heads; a tuned backbone is saved with the image encoder instead."""
        return {k: v for k, v in self._check().state_dict().items() if not k.startswith("image_tail.")}

    def config_dict(self) -> dict:
        return {"config": asdict(self.config), "vocabs": self.vocabs}

    @classmethod
    def from_state(cls, config: dict, state: Mapping[str, torch.Tensor]) -> "Aligner":
        c = dict(config["config"])
        c["attributes"] = tuple(c.get("attributes", ()))
        aligner = cls(AlignmentConfig(**c), vocabs=config["vocabs"])
        aligner.model = AlignmentModel(aligner.config, {k: len(v) for k, v in aligner.vocabs.items()})
        aligner.model.load_state_dict(dict(state), strict=True)
        aligner.model.eval()
        return aligner
