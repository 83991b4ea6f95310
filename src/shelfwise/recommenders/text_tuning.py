"""The item-text encoder adapted to a shop's sequences (LoRA) before a text-aware recommender trains.

The frozen MiniLM places items by what their text says; the shop's sequences say which items follow
which. ``adapt_text_encoder`` fine-tunes MiniLM on that with the search bi-encoder's tuner
(``tuning/bi_encoder.py``): an item's text is the query, the text of the item that followed it is the
positive, the other pairs of the batch are the negatives (contrastive loss), and training stops early
on the validation step (each validation history's last item -> its target), ranked among the items.
The adapted encoder then gives the item vectors (``item_repr.encode_item_texts(..., encoder_artifact=...)``),
which the recommender keeps frozen like the pretrained ones. An item with no history still gets its
vector from its text, now read the way the shop's shoppers move between items.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from shelfwise.datasets.sequences import Sequences
from shelfwise.recommenders.item_repr import as_texts

# Tokens read per item text: the frozen path's budget (TextEncoder's default), not search's 48 for queries,
# so adapted and pretrained vectors read the same words.
MAX_TOKENS = 64


def follow_pairs(seqs: Sequences, texts: Sequence[str]) -> pd.DataFrame:
    """Judgments ``query, item_id, relevance`` from consecutive items: the text of item a as the query,
    item b (which followed a) relevant (3). Repeats of an item and items without text are left out."""
    same = np.repeat(np.arange(len(seqs)), seqs.lengths)
    follows = same[:-1] == same[1:]
    before, after = seqs.items[:-1][follows], seqs.items[1:][follows]
    return _judgments(before, after, texts)


def _judgments(before: np.ndarray, after: np.ndarray, texts: Sequence[str]) -> pd.DataFrame:
    text = np.asarray([""] + as_texts(texts), dtype=object)  # item index i -> texts[i - 1]
    keep = (before != after) & (text[before] != "") & (text[after] != "")
    pairs = pd.DataFrame({"query": text[before[keep]], "item_id": after[keep].astype(str), "relevance": 3.0})
    return pairs.drop_duplicates(["query", "item_id"]).reset_index(drop=True)


def adapt_text_encoder(texts: Sequence[str], train: Sequences, valid_history: Sequences, valid_target: np.ndarray,
                       method: str = "lora", max_steps: int = 300, seed: int = 0, progress: bool = False):
    """A :class:`~shelfwise.tuning.bi_encoder.BiEncoderTuner`, fitted (``.encoder`` encodes with the
    adapted weights after ``.save``; ``.metrics`` has the validation NDCG@10 before and after)."""
    from shelfwise.tuning.bi_encoder import BiEncoderConfig, BiEncoderTuner

    items = pd.DataFrame({"item_id": [str(i) for i in range(1, len(texts) + 1)], "title": as_texts(texts)})
    train_pairs = follow_pairs(train, texts)
    if train_pairs.empty:
        raise ValueError("no two different items with text follow each other in the training sequences: nothing to adapt the text encoder to")
    valid_pairs = _judgments(valid_history.last(1), np.asarray(valid_target), texts)
    # In-batch negatives only: the keyword miner's hard negatives are items with similar text, which
    # are exactly what often follows (the same product in another size); as negatives they would teach
    # the encoder to push a cold item away from its look-alikes.
    config = BiEncoderConfig(method=method, max_steps=max_steps, max_length=MAX_TOKENS, hard_negative_miners=(), eval_every=50, seed=seed)
    return BiEncoderTuner(config, progress=progress).fit(items, train_pairs, valid_pairs if not valid_pairs.empty else train_pairs)


def adapted_item_vectors(texts: Sequence[str], train: Sequences, valid_history: Sequences, valid_target: np.ndarray,
                         cache_dir: Path | str, method: str = "lora", max_steps: int = 300, progress: bool = False) -> tuple[np.ndarray, dict]:
    """(item text vectors from the adapted encoder, as ``encode_item_texts`` lays them out; the tuning's metrics
    and ``encoder``, the adapted encoder's folder).
    The adapted encoder is saved under ``cache_dir``, keyed by the texts, the training sequences and the recipe,
    so the same data is adapted once."""
    from shelfwise import artifacts
    from shelfwise.recommenders.item_repr import encode_item_texts

    digest = hashlib.sha256(f"{method}|{max_steps}|{MAX_TOKENS}|".encode())
    for part in ("\x1f".join(as_texts(texts)).encode(), train.items.tobytes(), train.offsets.tobytes(),
                 valid_history.items.tobytes(), np.asarray(valid_target).tobytes()):
        digest.update(part)
    root = Path(cache_dir) / f"item-text-encoder-{method}-{digest.hexdigest()[:16]}"
    if not artifacts.versions(root):
        tuner = adapt_text_encoder(texts, train, valid_history, valid_target, method, max_steps, progress=progress)
        tuner.save(root)
    artifact = artifacts.load(root)
    return encode_item_texts(texts, cache_dir, progress=progress, encoder_artifact=artifact.path), {**artifact.metrics,
                                                                                                    "encoder": str(artifact.path)}
