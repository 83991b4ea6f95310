"""Neural sequence recommenders behind the scikit-learn-like contract every recommender keeps:
``fit(train) -> self`` and ``score(histories) -> float32 [n, n_items + 1]`` (column 0 = -inf),
plus ``save`` / ``load`` in the one artifact format."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import safetensors.torch
import torch

from shelfwise import artifacts
from shelfwise.datasets.sequences import Sequences
from shelfwise.recommenders.baselines import ItemTransitions
from shelfwise.recommenders.blend import blended_scores, choose_weight, transitions_from_bytes, transitions_to_bytes
from shelfwise.recommenders.item_repr import set_item_text, text_table
from shelfwise.recommenders.losses import LossConfig
from shelfwise.recommenders.registry import DEFAULT_MODEL, MODELS, build_model
from shelfwise.recommenders.rerank import CandidateRanker, Candidates, candidate_features, fit_if_better, reranked
from shelfwise.training.loop import TrainConfig, TrainResult, train
from shelfwise.training.sequential import NextItemTask, score_histories, unwrap


@dataclass
class SequentialRecommender:
    model: str = DEFAULT_MODEL  # a key of recommenders.registry.MODELS
    model_config: dict = field(default_factory=dict)  # overrides of the model's config dataclass
    loss: LossConfig = field(default_factory=LossConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    mask_history: bool = True  # validation leaves history items out of the lists, like the test protocol
    # Frozen text vectors [n_items + 1, 384] for model_config item_repr "text" / "text+id" (item_repr.encode_item_texts).
    item_text: np.ndarray | None = field(default=None, repr=False)
    # Weight of item-to-item transitions in the scores (see blend.py): "auto" chooses it on validation, 0 = the network alone.
    transitions_weight: float | str = "auto"
    # What made ``item_text``: "" = the pretrained MiniLM, else the folder of the adapted encoder (--item-text lora).
    # Items added after training must be encoded by the same one (add_items).
    item_text_encoder: str = ""
    # Learn a re-ranking of the blend's top candidates on the validation step (rerank.py), kept only where it
    # beats the blend there.
    rerank: bool = True

    def __post_init__(self):
        w = self.transitions_weight
        if w != "auto" and not (isinstance(w, (int, float)) and not isinstance(w, bool) and 0 <= w <= 1):
            raise ValueError(f"transitions_weight must be 'auto' or a number from 0 to 1, got {w!r}")
        if not isinstance(self.rerank, bool):
            raise ValueError(f"rerank must be true or false, got {self.rerank!r}")
        self.ranker_: CandidateRanker | None = None  # learned in fit (rerank.py); none until then

    def fit(self, train_seqs: Sequences, valid_history: Sequences | None = None, valid_target: np.ndarray | None = None):
        """Train on ``train_seqs``, selecting the epoch by validation NDCG@10. Without an explicit
        validation set, each sequence's last item (sequences of 3+ items) is held out for it."""
        if valid_history is None:
            rows = np.flatnonzero(train_seqs.lengths >= 3)
            held = train_seqs.take(rows)
            valid_history, valid_target = held.truncate(1), held.last(1)
            train_seqs = _drop_last_of(train_seqs, rows)
        torch.manual_seed(self.train_config.seed)  # the initial weights are part of a seeded run
        self.network_ = build_model(self.model, train_seqs.n_items, **self.model_config)
        set_item_text(self.network_, self.item_text, seen_items=train_seqs.items)
        self.item_ids_ = train_seqs.item_ids
        task = NextItemTask(self.network_, train_seqs, valid_history, valid_target, batch_size=self.train_config.batch_size,
                            loss=self.loss, mask_history=self.mask_history)
        self.result_: TrainResult = train(self.network_, task, self.train_config)
        self.transitions_ = ItemTransitions().fit(train_seqs) if self.transitions_weight != 0 else None
        self.blend_validation_ = {}
        if self.transitions_weight == "auto":
            self.transitions_weight_, self.blend_validation_ = choose_weight(
                lambda h: score_histories(self.network_, h), self.transitions_, valid_history, valid_target, self.mask_history,
                self.train_config.metric)
        else:
            self.transitions_weight_ = float(self.transitions_weight)
        self.ranker_, self.rerank_validation_ = None, {}
        if self.rerank and self.transitions_ is not None:
            candidates = Candidates.cat([self._candidates(valid_history.take(rows))[1] for rows in _chunks(len(valid_history))])
            self.ranker_, self.rerank_validation_ = fit_if_better(candidates, valid_target, self.train_config.metric,
                                                                  self.train_config.seed)
        if not self.transitions_weight_ and self.ranker_ is None:  # the network alone: nothing to keep counting
            self.transitions_ = None
        return self

    def _candidates(self, histories: Sequences) -> tuple[torch.Tensor, Candidates]:
        """(blended scores, candidates) for the re-ranker (rerank.candidate_features)."""
        with torch.no_grad():
            vectors = unwrap(self.network_).output_embeddings().detach()  # once: a text-aware table projects all items
        return candidate_features(score_histories(self.network_, histories, vectors), self.transitions_, histories,
                                  self.transitions_weight_, vectors, self.mask_history)

    def partial_fit(self, seqs: Sequences, epochs: int = 1) -> "SequentialRecommender":
        """Learn from ``seqs`` (e.g. the same users with their newest events): count its transitions
        afresh and train the network ``epochs`` more at the learning rate its schedule ended with
        (0: transitions only). Nothing is validated here; ``fit`` chose the recipe."""
        if self.transitions_ is not None:
            self.transitions_ = ItemTransitions().fit(seqs)
        if epochs:
            c = self.train_config
            final_lr = c.lr * (c.min_lr_ratio if c.decay == "cosine" else 1.0)
            config = replace(c, epochs=epochs, lr=final_lr, warmup_steps=0, decay="constant", patience=0, checkpoint_dir=None,
                             max_seconds=None, seed=c.seed + 1)
            train(self.network_, NextItemTask(self.network_, seqs, batch_size=c.batch_size, loss=self.loss), config)
        return self

    @property
    def text_aware(self) -> bool:
        """Whether items are scored through their text, so new ones can be added without training (add_items)."""
        return text_table(self.network_) is not None

    def add_items(self, item_ids, text_vectors: np.ndarray) -> "SequentialRecommender":
        """Append catalogue items that came after training, with their text vectors ``[m, 384]`` from the encoder
        that made the others (``item_text_encoder``). They have no history and no ID part, so the model scores them
        by their text, as it scores a cold item; nothing is trained. Text-aware models only."""
        if not self.text_aware:
            raise ValueError(f"{self.model} with item_repr={self.network_.config.item_repr!r} has no item text to score new items by")
        item_ids = np.asarray(list(item_ids), dtype=object)
        if len(item_ids) != len(text_vectors):
            raise ValueError(f"{len(item_ids)} new items but {len(text_vectors)} text vectors")
        known = set(map(str, self.item_ids_))
        if any(str(x) in known for x in item_ids):
            raise ValueError(f"already in the model: {sorted(str(x) for x in item_ids if str(x) in known)[:5]}")
        self.network_.item_embedding.add_items(text_vectors)
        self.network_.config.n_items += len(item_ids)
        self.item_ids_ = np.concatenate([self.item_ids_, item_ids])
        if self.transitions_ is not None:
            self.transitions_.add_items(len(item_ids))
        return self

    def score(self, histories: Sequences) -> np.ndarray:
        if self.ranker_ is not None:
            return np.concatenate([reranked(*self._candidates(histories.take(rows)), self.ranker_).numpy()
                                   for rows in _chunks(len(histories))])
        network = score_histories(self.network_, histories)
        return blended_scores(network, self.transitions_, histories, self.transitions_weight_).numpy()

    def config(self) -> dict:
        return {
            "kind": "sequential_recommender",
            "model": self.model,
            "model_config": asdict(self.network_.config),
            "loss": asdict(self.loss),
            "train_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.train_config).items()},
            "mask_history": self.mask_history,
            "transitions_weight": self.transitions_weight_,
            "item_text_encoder": self.item_text_encoder,
            "rerank": self.rerank,
        }

    def save(self, root: Path | str, metrics: dict | None = None) -> artifacts.Artifact:
        """A new artifact version under ``root``; ``items.json`` maps item index i to its external id."""
        extra = {}
        if self.item_ids_ is not None:
            extra["items.json"] = json.dumps([str(x) for x in self.item_ids_]).encode()
        if self.transitions_ is not None:
            extra["transitions.npz"] = transitions_to_bytes(self.transitions_)
        if self.ranker_ is not None:
            extra["ranker.safetensors"] = safetensors.torch.save(self.ranker_.state_dict())
        return artifacts.save(root, self.network_.state_dict(), self.config(), metrics, extra_files=extra)

    @classmethod
    def load(cls, path: Path | str) -> "SequentialRecommender":
        art = artifacts.load(path)
        c = art.config
        if c.get("kind") != "sequential_recommender" or c.get("model") not in MODELS:
            raise ValueError(f"{art.path} is not a sequential recommender artifact")
        train_fields = {f.name for f in fields(TrainConfig)}
        rec = cls(model=c["model"], model_config={k: v for k, v in c["model_config"].items() if k != "n_items"},
                  loss=LossConfig(**c["loss"]), train_config=TrainConfig(**{k: (tuple(v) if k == "betas" else v)
                                                                            for k, v in c["train_config"].items() if k in train_fields}),
                  mask_history=c.get("mask_history", True), transitions_weight=c.get("transitions_weight", 0.0),
                  item_text_encoder=c.get("item_text_encoder", ""), rerank=c.get("rerank", False))
        rec.network_ = build_model(c["model"], c["model_config"]["n_items"], **rec.model_config)
        rec.network_.load_state_dict(art.state_dict())
        rec.network_.eval()
        transitions_file = art.path / "transitions.npz"
        rec.transitions_weight_ = float(rec.transitions_weight) if transitions_file.exists() else 0.0
        rec.transitions_ = transitions_from_bytes(transitions_file.read_bytes()) if transitions_file.exists() else None
        ranker_file = art.path / "ranker.safetensors"
        rec.ranker_ = None
        if ranker_file.exists():
            rec.ranker_ = CandidateRanker()
            rec.ranker_.load_state_dict(safetensors.torch.load(ranker_file.read_bytes()))
            rec.ranker_.eval()
        items_file = art.path / "items.json"
        rec.item_ids_ = np.array(json.loads(items_file.read_text()), dtype=object) if items_file.exists() else None
        return rec


def _chunks(n: int, size: int = 256) -> list[np.ndarray]:
    """Row ranges of at most ``size``: the re-ranker's features hold several [rows, n_items] matrices at once."""
    return np.array_split(np.arange(n), max(1, -(-n // size)))


def _drop_last_of(seqs: Sequences, rows: np.ndarray) -> Sequences:
    """``seqs`` with the last item of the sequences at ``rows`` removed."""
    drop = np.zeros(len(seqs.items), dtype=bool)
    drop[seqs.offsets[1:][rows] - 1] = True
    lengths = seqs.lengths - np.bincount(rows, minlength=len(seqs))
    return Sequences(items=seqs.items[~drop], offsets=np.r_[0, np.cumsum(lengths)], keys=seqs.keys, n_items=seqs.n_items,
                     item_ids=seqs.item_ids, times=None if seqs.times is None else seqs.times[~drop], meta=dict(seqs.meta))
