"""Readers for the public benchmark formats in ``../shared/data``. Each either returns training
data directly (sequences and splits) or frames that go through the same validation as any
ingest (``load_into_store``). Malformed input raises ``ValueError`` naming the file and line."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shelfwise.datasets.sequences import LeaveOneOut, Sequences


def int_lines(path: Path, min_tokens: int = 1) -> Iterator[tuple[int, list[int]]]:
    """(line number, integers) for each non-blank line of a whitespace-separated integer file."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            try:
                values = [int(t) for t in tokens]
            except ValueError:
                bad = next(t for t in tokens if not t.lstrip("-").isdigit())
                raise ValueError(f"{path}:{number}: expected whole numbers, found {bad!r}") from None
            if len(values) < min_tokens:
                raise ValueError(f"{path}:{number}: expected at least {min_tokens} numbers, found {len(values)}")
            yield number, values


# -- session files (Diginetica, Tmall) -------------------------------------------------------


@dataclass
class SessionData:
    train: Sequences  # one anonymous session per sequence
    test_prefix: Sequences  # the events so far of each test case
    test_target: np.ndarray  # the next item of each test case


def read_sessions(folder: str | Path) -> SessionData:
    """``train_sessions.txt`` (one session per line) and ``test_prefix_target.tsv``
    (``prefix items<TAB>target``). Item ids are used as indexes (they start at 1)."""
    folder = Path(folder)
    train = [items for _, items in int_lines(folder / "train_sessions.txt")]
    prefixes, targets = [], []
    path = folder / "test_prefix_target.tsv"
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                prefix, target = [int(t) for t in parts[0].split()], int(parts[1])
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{number}: expected 'prefix items<TAB>target item'") from None
            if not prefix:
                raise ValueError(f"{path}:{number}: the prefix is empty")
            prefixes.append(prefix)
            targets.append(target)
    n_items = max(max(max(s) for s in train), max(max(p) for p in prefixes), max(targets))
    return SessionData(
        train=Sequences.from_lists(train, n_items=n_items),
        test_prefix=Sequences.from_lists(prefixes, n_items=n_items),
        test_target=np.array(targets, dtype=np.int64),
    )


# -- RecBole atomic files with item text (amazon_scientific) ---------------------------------


@dataclass
class TextSequenceData:
    split: LeaveOneOut  # item index = RecBole index + 1
    item_text: pd.DataFrame  # item_index, item_id (ASIN), text — one row per item index


def _read_atomic(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def _inter_rows(path: Path) -> tuple[list[str], list[list[int]], np.ndarray]:
    frame = _read_atomic(path)
    missing = {"user_id", "item_id_list", "item_id"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}:1: missing columns {', '.join(sorted(missing))}")
    histories, targets = [], []
    for number, (history, target) in enumerate(zip(frame["item_id_list"], frame["item_id"]), start=2):
        try:
            histories.append([int(t) + 1 for t in history.split()])
            targets.append(int(target) + 1)
        except ValueError:
            raise ValueError(f"{path}:{number}: item indexes must be whole numbers") from None
    return frame["user_id"].tolist(), histories, np.array(targets, dtype=np.int64)


def read_recbole_text(folder: str | Path, name: str | None = None) -> TextSequenceData:
    """``<name>.text``, ``.item2index`` and ``.{valid,test}.inter``: the full-history validation and
    test rows give the leave-one-out split; training uses every item before the validation one."""
    folder = Path(folder)
    name = name or folder.name.split("_")[-1].capitalize()
    index = pd.read_csv(folder / f"{name}.item2index", sep="\t", header=None, names=["item_id", "index"], dtype={"item_id": str})
    text = _read_atomic(folder / f"{name}.text").rename(columns={"text": "text"})
    item_text = index.merge(text, on="item_id", how="left").assign(item_index=lambda f: f["index"] + 1)
    item_text = item_text.sort_values("item_index")[["item_index", "item_id", "text"]].reset_index(drop=True)
    n_items = int(item_text["item_index"].max())
    valid_users, valid_hist, valid_target = _inter_rows(folder / f"{name}.valid.inter")
    test_users, test_hist, test_target = _inter_rows(folder / f"{name}.test.inter")
    if valid_users != test_users:
        raise ValueError(f"{folder}: the validation and test files list different users")
    train = Sequences.from_lists(valid_hist, n_items=n_items, keys=np.array(valid_users, dtype=object))
    train.item_ids = np.r_[np.array([""], dtype=object), item_text["item_id"].to_numpy(dtype=object)]
    test = Sequences.from_lists(test_hist, n_items=n_items, keys=np.array(test_users, dtype=object))
    test.item_ids = train.item_ids
    split = LeaveOneOut(train=train, valid_history=train, valid_target=valid_target, test_history=test, test_target=test_target)
    return TextSequenceData(split=split, item_text=item_text)


# -- catalogues for the store ----------------------------------------------------------------


def homedepot_frames(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, judgments): products as items (item_id, title) and the graded query–product pairs."""
    folder = Path(folder)
    products = pd.read_csv(folder / "products.csv", dtype=str, keep_default_na=False)
    judgments = pd.read_csv(folder / "judgments_dev.csv", dtype={"query": str, "product_id": str})
    return products.rename(columns={"product_id": "item_id"}), judgments


def fashion_items(folder: str | Path, with_images_only: bool = False) -> pd.DataFrame:
    """The fashion catalogue as items: name as title, master > sub > article type as category,
    gender / colour / season / year / usage as attributes, and the photo path where there is one."""
    folder = Path(folder)
    styles = pd.read_csv(folder / "styles_full.csv", dtype=str, keep_default_na=False)
    manifest = pd.read_csv(folder / "images_manifest.csv", dtype=str, keep_default_na=False)[["id", "image"]]
    frame = styles.merge(manifest, on="id", how="inner" if with_images_only else "left")
    image = frame["image"].fillna("")
    attributes = frame[["gender", "baseColour", "season", "year", "usage"]].rename(columns={"baseColour": "colour"})
    return pd.DataFrame(
        {
            "item_id": frame["id"],
            "title": frame["productDisplayName"],
            "category": frame["masterCategory"] + " > " + frame["subCategory"] + " > " + frame["articleType"],
            "image": np.where(image != "", [str(folder / p) for p in image], None),
            "attributes": [{k: v for k, v in row.items() if v} for row in attributes.to_dict("records")],
        }
    )


def sequence_events(seqs: Sequences, event_type: str = "purchase", start_ms: int = 1_600_000_000_000) -> pd.DataFrame:
    """Sequences as events (one per item, a minute apart, in order) for loading into the store."""
    position = np.arange(len(seqs.items)) - np.repeat(seqs.offsets[:-1], seqs.lengths)
    names = seqs.item_ids if seqs.item_ids is not None else np.arange(seqs.n_items + 1).astype(str).astype(object)
    return pd.DataFrame(
        {
            "user_id": np.repeat(seqs.keys.astype(str), seqs.lengths),
            "item_id": names[seqs.items],
            "type": event_type,
            "ts": (start_ms + position * 60_000) / 1000,
        }
    )


def _recbole_text_frames(folder: Path) -> dict[str, pd.DataFrame]:
    data = read_recbole_text(folder)
    items = data.item_text.rename(columns={"text": "title"})[["item_id", "title"]]
    return {"items": items, "events": sequence_events(data.split.test_history)}


# What each public folder puts into the store, by kind (items first: events refer to them).
STORE_LOADERS = {
    "fashion": lambda folder: {"items": fashion_items(folder)},
    "homedepot": lambda folder: {"items": homedepot_frames(folder)[0]},
    "recbole-text": _recbole_text_frames,
}
