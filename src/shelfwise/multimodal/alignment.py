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

With ``photo_probe_l2`` a photo's attributes are read instead by a linear classifier per attribute
fitted on the standardised photo features (convex, to convergence), and retrieval scores an item
by the log-probability its photo gives the query's attributes (query and item vectors differ).
With ``text_probe_l2`` a name's attributes are read the same way from its embedding, fitted on
every labelled name of the catalogue (tens of thousands, against ~1,800 photos).
:meth:`Aligner.cross_fit_weights` chooses how much each attribute counts in retrieval on held-out
folds of the training pairs rather than on the few validation pairs.

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

# Item-side log-probabilities stop here: one confidently wrong attribute costs an item a bounded amount.
PROBABILITY_FLOOR = 1e-4


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
    # Photo features standardised per dimension (statistics of the training photos, kept in the
    # model) before the projection: needed for ImageEncoderConfig.pooled_blocks, whose parts
    # differ in scale by orders of magnitude.
    standardize_images: bool = False
    # > 0: a photo's attributes are read by a linear classifier per attribute on the standardised
    # photo features (multinomial logistic regression with this L2 weight, fitted before the
    # projections), not by the shared heads through the 256-d embedding. Retrieval then scores
    # an item by the log-probability its photo gives the query's attributes (see retrieval_vectors).
    photo_probe_l2: float = 0.0
    # > 0: a name's attributes are read the same way, by a linear classifier per attribute on the
    # raw name embedding, fitted on every labelled name given (paired and extra: tens of thousands
    # in a catalogue) rather than through the shared heads, which learn mostly from the paired
    # photos. On the fashion test names, article type from the name: 0.909 (heads) -> 0.942 (probes).
    text_probe_l2: float = 0.0


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
        if c.standardize_images:
            self.register_buffer("image_mean", torch.zeros(c.image_dim))
            self.register_buffer("image_std", torch.ones(c.image_dim))
        # Fitted by fit_photo_probes, not by the training loop (no gradient reaches them there).
        self.photo_probes = nn.ModuleDict({name: nn.Linear(c.image_dim, n) for name, n in n_classes.items()}) if c.photo_probe_l2 else None
        self.text_probes = nn.ModuleDict({name: nn.Linear(c.text_dim, n) for name, n in n_classes.items()}) if c.text_probe_l2 else None

    def standardized(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.image_mean) / self.image_std if self.config.standardize_images else features

    def photo_features(self, photos: PhotoInputs) -> torch.Tensor:
        """Photo features as given (standardised when configured), or trunk activations through
        the trainable tail (+ colours)."""
        if not isinstance(photos, TrunkInputs):
            return self.standardized(torch.from_numpy(np.asarray(photos, dtype=np.float32)))
        if self.image_tail is None:
            raise ValueError("trunk activations need an image tail to fine-tune; pass image_tail to the Aligner")
        features = self.image_tail(torch.from_numpy(photos.activations))
        return features if photos.colours is None else torch.cat([features, torch.from_numpy(photos.colours)], dim=-1)

    def embed_images(self, features: torch.Tensor) -> torch.Tensor:
        if self.config.standardize_images:
            features = features / math.sqrt(features.shape[-1])  # unit expected length, like the plain encoder's features
        return F.normalize(self.image_proj(features), dim=-1)

    def embed_texts(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(features), dim=-1)

    def head_logits(self, emb: torch.Tensor, name: str) -> torch.Tensor:
        return self.heads[name](emb * self.config.head_scale)

    def photo_logits(self, photo_features: torch.Tensor, emb: torch.Tensor, name: str) -> torch.Tensor:
        """Attribute logits of photos: the photo probe's when there is one, else the shared head's."""
        if self.photo_probes is None:
            return self.head_logits(emb, name)
        return self.photo_probes[name](photo_features)

    def text_logits(self, text_features: torch.Tensor, emb: torch.Tensor, name: str) -> torch.Tensor:
        """Attribute logits of names: the text probe's when there is one, else the shared head's."""
        if self.text_probes is None:
            return self.head_logits(emb, name)
        return self.text_probes[name](text_features)

    def photo_retrieval_vectors(self, photo_features: torch.Tensor, side: str, weights: Mapping[str, float] | None = None) -> torch.Tensor:
        emb = self.embed_images(photo_features)
        return self.retrieval_vectors(emb, {name: self.photo_logits(photo_features, emb, name) for name in self.heads}, weights, side)

    def text_retrieval_vectors(self, text_features: torch.Tensor, side: str, weights: Mapping[str, float] | None = None) -> torch.Tensor:
        emb = self.embed_texts(text_features)
        return self.retrieval_vectors(emb, {name: self.text_logits(text_features, emb, name) for name in self.heads}, weights, side)

    def retrieval_vectors(self, emb: torch.Tensor, logits: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None,
                          side: str = "query") -> torch.Tensor:
        """[emb ; w_a * f(p_a) ...] (see AlignmentConfig.retrieval_weights), ``logits`` per attribute.

        With shared heads both sides are unit vectors with f = sqrt: the inner product adds the
        Bhattacharyya agreement of the two predictions. With photo probes the score is asymmetric:
        queries carry w_a * p_a, items log p_a, so the inner product adds
        sum_a w_a * E_{c ~ query}[log p_item(c)]: an item whose photo makes the query's type
        unlikely falls far, which the bounded Bhattacharyya term does not do.
        """
        weights = self.config.retrieval_weights if weights is None else weights
        probes = self.photo_probes is not None
        parts = [emb]
        for name in self.heads:
            w = float(weights.get(name, 0.0))
            # Always present (zero-weighted when unused) so every vector has the same length.
            if not probes:
                parts.append(w * logits[name].softmax(-1).sqrt())
            elif side == "query":
                parts.append(w * logits[name].softmax(-1))
            else:
                parts.append(logits[name].log_softmax(-1).clamp(min=math.log(PROBABILITY_FLOOR)))
        out = torch.cat(parts, dim=-1)
        return out if probes else F.normalize(out, dim=-1)

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
        photo_features = model.photo_features(take_photos(self.valid.images, slice(None), 0))
        text_features = torch.from_numpy(self.valid.texts)
        image_emb, text_emb = model.embed_images(photo_features), model.embed_texts(text_features)
        images, texts = image_emb.numpy(), text_emb.numpy()
        t2i, i2t = retrieval_recall(texts, images), retrieval_recall(images, texts)
        metrics = {"t2i_r@10": t2i[10], "t2i_r@1": t2i[1], "i2t_r@10": i2t[10], "r@10": 0.5 * (t2i[10] + i2t[10])}
        # Model selection also weighs how well photos and names show their attributes: both sides'
        # predictions feed retrieval.
        accuracies = []
        for name, codes in self.valid.labels.items():
            known = codes != UNKNOWN
            if name in model.heads and known.any():
                from_photo = model.photo_logits(photo_features, image_emb, name).argmax(-1).numpy()
                from_name = model.text_logits(text_features, text_emb, name).argmax(-1).numpy()
                metrics[f"{name}_accuracy"] = float((from_photo[known] == codes[known]).mean())
                metrics[f"{name}_name_accuracy"] = float((from_name[known] == codes[known]).mean())
                accuracies += [metrics[f"{name}_accuracy"], metrics[f"{name}_name_accuracy"]]
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
        if self.config.photo_probe_l2 and not self.config.standardize_images:
            raise ValueError("photo_probe_l2 needs standardize_images=True: the probes read standardised photo features")
        if self.config.standardize_images and image_tail is not None:
            raise ValueError("standardize_images is for frozen photo features; a fine-tuned image tail gives unit features")
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
        codes = self._codes(labels, len(texts))
        if self.config.standardize_images:
            self._fit_standardization(images)
        if self.config.photo_probe_l2:
            self.fit_photo_probes(images, codes)
        if self.config.text_probe_l2:
            self.fit_text_probes(texts, codes, extra_texts, self._codes(extra_labels, 0 if extra_texts is None else len(extra_texts)))
        data = PairData(
            images=images,
            texts=np.asarray(texts, dtype=np.float32),
            labels=codes,
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
    def _fit_standardization(self, images: np.ndarray) -> None:
        """Per-dimension mean and std of the training photos (every view), kept in the model."""
        flat = torch.from_numpy(images.reshape(-1, images.shape[-1]))
        self.model.image_mean.copy_(flat.mean(0))
        self.model.image_std.copy_(flat.std(0).clamp(min=1e-6))

    def fit_photo_probes(self, images: np.ndarray, codes: Mapping[str, np.ndarray]) -> None:
        """One multinomial logistic regression per attribute on the standardised photo features
        (every view of each training photo), L2 weight ``photo_probe_l2``: with ~2,000 photos a
        convex fit to convergence beats a head trained through the embedding."""
        model = self._check()
        views = images.shape[1]
        with torch.no_grad():
            x = model.photo_features(images.reshape(-1, images.shape[-1]))
        for name, probe in model.photo_probes.items():
            _fit_probe(probe, x, torch.from_numpy(np.repeat(codes[name], views)), self.config.photo_probe_l2)

    def fit_text_probes(self, texts: np.ndarray, codes: Mapping[str, np.ndarray], extra_texts: np.ndarray | None = None,
                        extra_codes: Mapping[str, np.ndarray] | None = None) -> None:
        """One multinomial logistic regression per attribute on the name embeddings, paired names
        and names without a photo together, L2 weight ``text_probe_l2``."""
        model = self._check()
        x, y = [np.asarray(texts, np.float32)], {name: [codes[name]] for name in model.text_probes}
        if extra_texts is not None:
            x.append(np.asarray(extra_texts, np.float32))
            for name in y:
                y[name].append(extra_codes[name])
        x = torch.from_numpy(np.concatenate(x))
        for name, probe in model.text_probes.items():
            _fit_probe(probe, x, torch.from_numpy(np.concatenate(y[name])), self.config.text_probe_l2)

    @torch.no_grad()
    def tune_weights(self, images: PhotoInputs, texts: np.ndarray, grid: Sequence[float] | None = None) -> dict[str, float]:
        """Attribute weights of the retrieval vectors that maximise text->image Recall@10 on these
        held-out pairs (ties: the smaller weights). A grid per attribute, one attribute at a time;
        log-probabilities (photo probes) are on a larger scale than square roots, hence their smaller grid."""
        score = self._weight_scorer(images, texts, lambda rank: float((rank < 10).float().mean()))
        return _search_weights(score, list(self._check().heads), grid or self._weight_grid())

    def cross_fit_weights(self, images: PhotoInputs, texts: np.ndarray, labels: Mapping[str, Sequence] | None = None,
                          folds: int = 5, seed: int = 0, **fit_options) -> dict[str, float]:
        """Choose the retrieval weights on the training pairs themselves, cross-fitted, and keep them.

        The pairs (as given to :meth:`fit`; ``fit_options`` are its other arguments: extra_texts,
        extra_labels, valid) are split into ``folds`` parts; for each part
        an aligner of this configuration is fitted on the others and ranks the part's photos for
        each of its names. The weights with the best mean reciprocal rank of the right photo over
        all parts win (the grid search of :meth:`tune_weights`). Every training pair is held out
        once, so the weights are judged on hundreds of pairs rather than a small validation set,
        on which near-every setting finds nearly every photo in its top 10. Costs ``folds`` fits.
        """
        if self.image_tail is not None:
            raise ValueError("cross-fitted weights need frozen photo features; this aligner fine-tunes an image tail")
        images, texts = self._views(images), np.asarray(texts, dtype=np.float32)
        if folds < 2 or len(texts) < 2 * folds:
            raise ValueError(f"cross-fitting needs at least 2 folds of 2 pairs; got {folds} folds for {len(texts)} pairs")
        labels = {k: np.asarray(v, dtype=object) for k, v in (labels or {}).items()}
        no_weights = replace(self.config, retrieval_weights={name: 0.0 for name in self.vocabs})  # a fold keeps them: no tuning
        scorers = []
        for part in np.array_split(np.random.default_rng(seed).permutation(len(texts)), folds):
            rest = np.setdiff1d(np.arange(len(texts)), part)
            fold = Aligner(no_weights, self.train_config, self.vocabs).fit(
                take_photos(images, rest, slice(None)), texts[rest], {k: v[rest] for k, v in labels.items()}, **fit_options)
            scorers.append(fold._weight_scorer(take_photos(images, part, 0), texts[part], lambda rank: float((1.0 / (rank + 1)).mean())))
        weights = _search_weights(lambda w: float(np.mean([score(w) for score in scorers])), list(self._check().heads), self._weight_grid())
        self.config.retrieval_weights = weights
        return weights

    def _weight_grid(self) -> tuple[float, ...]:
        return (0.0, 0.02, 0.05, 0.1, 0.2) if self._check().photo_probes is not None else (0.0, 0.5, 1.0, 1.5, 2.0)

    @torch.no_grad()
    def _weight_scorer(self, images: PhotoInputs, texts: np.ndarray, metric):
        """weights -> ``metric`` of the ranks (0 = first) of each name's own photo among these pairs."""
        model = self._check().eval()
        photo_features = model.photo_features(images)
        text_features = torch.from_numpy(np.asarray(texts, np.float32))

        def score(weights: Mapping[str, float]) -> float:
            queries = model.text_retrieval_vectors(text_features, "query", weights)
            items = model.photo_retrieval_vectors(photo_features, "item", weights)
            scores = queries @ items.T
            return metric((scores > scores.diagonal().unsqueeze(1)).sum(1))

        return score

    def _check(self) -> AlignmentModel:
        if self.model is None:
            raise RuntimeError("the aligner is not fitted; call fit() or load an artifact")
        return self.model

    @property
    def unit_vectors(self) -> bool:
        """Whether retrieval vectors are unit length (shared heads), so a mean of two (an item's
        photo and name) is renormalised; with photo probes item vectors hold log-probabilities."""
        return self._check().photo_probes is None

    @property
    def dim(self) -> int:
        """Length of the vectors :meth:`embed_images` / :meth:`embed_texts` return."""
        return self.config.dim + sum(len(v) for v in self.vocabs.values())

    @torch.no_grad()
    def embed_images(self, features: PhotoInputs, retrieval: bool = True, side: str = "item") -> np.ndarray:
        """[n, D] photo features (as the model's image encoder gives them) -> [n, :attr:`dim`]
        retrieval vectors, or the [n, config.dim] unit embeddings alone with ``retrieval=False``.
        ``side``: ``"item"`` for vectors to index, ``"query"`` for vectors to search with (they
        differ when the aligner has photo probes; see AlignmentModel.retrieval_vectors)."""
        model = self._check().eval()
        photo_features = model.photo_features(features)
        if not retrieval:
            return model.embed_images(photo_features).numpy()
        return model.photo_retrieval_vectors(photo_features, _side(side)).numpy()

    @torch.no_grad()
    def embed_texts(self, features: np.ndarray, retrieval: bool = True, side: str = "query") -> np.ndarray:
        """[n, 384] MiniLM embeddings -> vectors in the shared space (as :meth:`embed_images`)."""
        model = self._check().eval()
        text_features = torch.from_numpy(np.asarray(features, dtype=np.float32))
        if not retrieval:
            return model.embed_texts(text_features).numpy()
        return model.text_retrieval_vectors(text_features, _side(side)).numpy()

    @torch.no_grad()
    def photo_attributes(self, features: PhotoInputs, attribute: str) -> np.ndarray:
        """Labels (strings) of ``attribute`` read from photo features: by the photo probe when
        the aligner has one, else by the shared head."""
        model = self._check().eval()
        if attribute not in model.heads:
            raise KeyError(f"no head for {attribute!r}; have {sorted(model.heads)}")
        photo_features = model.photo_features(features)
        codes = model.photo_logits(photo_features, model.embed_images(photo_features), attribute).argmax(-1).numpy()
        return np.asarray(self.vocabs[attribute], dtype=object)[codes]

    @torch.no_grad()
    def text_attributes(self, features: np.ndarray, attribute: str) -> np.ndarray:
        """Labels (strings) of ``attribute`` read from [n, 384] name embeddings: by the text probe
        when the aligner has one, else by the shared head."""
        model = self._check().eval()
        if attribute not in model.heads:
            raise KeyError(f"no head for {attribute!r}; have {sorted(model.heads)}")
        text_features = torch.from_numpy(np.asarray(features, dtype=np.float32))
        codes = model.text_logits(text_features, model.embed_texts(text_features), attribute).argmax(-1).numpy()
        return np.asarray(self.vocabs[attribute], dtype=object)[codes]

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


def _search_weights(score, names: Sequence[str], grid: Sequence[float]) -> dict[str, float]:
    """Coordinate search over a grid of weights per attribute, two sweeps (the attributes interact a
    little), from all zero; a setting must beat the best so far, so ties keep the smaller weights."""
    weights = {name: 0.0 for name in names}
    best = score(weights)
    for _ in range(2):
        for name in names:
            for w in grid:
                trial = {**weights, name: w}
                value = score(trial)
                if value > best + 1e-9:
                    best, weights = value, trial
    return weights


def _fit_probe(probe: nn.Linear, x: torch.Tensor, y: torch.Tensor, l2: float, max_iter: int = 200) -> None:
    """Multinomial logistic regression of ``y`` (codes; UNKNOWN rows left out) on ``x``, full-batch
    L-BFGS to convergence, L2 weight ``l2`` on the weights (not the biases)."""
    known = y != UNKNOWN
    if not known.any():
        return
    xs, ys = x[known], y[known]
    optimizer = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(probe(xs), ys) + l2 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)


def _side(side: str) -> str:
    if side not in ("query", "item"):
        raise ValueError(f"side must be 'query' or 'item', got {side!r}")
    return side
