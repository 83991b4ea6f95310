"""Search a catalogue in the aligned text <-> image space: by text (a query finds products by
their photos, or by their names when they have one) and by photo ("search by photo").

An item is indexed from what it has: its photo, its name, or both (the mean of the two aligned
vectors). Items with neither, and photos that cannot be read, are left out and listed in
``skipped`` with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from shelfwise.search.keyword import Hit, SearchPage
from shelfwise.search.semantic import VectorIndex


def read_catalogue(path: Path | str) -> pd.DataFrame:
    """A products CSV for multimodal search: ``product_id`` (or ``item_id``) and at least one of
    ``title`` / ``image`` (a photo path, relative to the CSV's folder or absolute)."""
    path = Path(path)
    items = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "item_id" not in items.columns and "product_id" in items.columns:
        items = items.rename(columns={"product_id": "item_id"})
    if "item_id" not in items.columns:
        raise ValueError(f"{path}: missing column product_id (or item_id); found {list(items.columns)}")
    if not {"title", "image"} & set(items.columns):
        raise ValueError(f"{path}: needs a title or an image column (or both); found {list(items.columns)}")
    empty = items["item_id"] == ""
    if empty.any():
        raise ValueError(f"{path}, line {int(np.flatnonzero(empty)[0]) + 2}: empty item id")
    duplicated = items["item_id"].duplicated()
    if duplicated.any():
        raise ValueError(f"{path}, line {int(np.flatnonzero(duplicated)[0]) + 2}: duplicate item id {items['item_id'][duplicated].iloc[0]!r}")
    for column in ("title", "image"):
        if column not in items.columns:
            items[column] = ""
    has_image = items["image"] != ""
    items.loc[has_image, "image"] = [str(p if Path(p).is_absolute() else path.parent / p) for p in items.loc[has_image, "image"]]
    return items


class MultimodalSearch:
    """``fit(items)`` then ``search_text(queries)`` / ``search_images(photos)``, each -> ``SearchPage`` list."""

    def __init__(self, model, image_encoder=None, text_encoder=None, progress: bool = False):
        self.model = model
        self._image_encoder = image_encoder
        self._text_encoder = text_encoder
        self.progress = progress
        self.index = VectorIndex(dim=model.aligner.dim)
        self.titles: dict[str, str] = {}
        self.skipped: dict[str, str] = {}

    @property
    def image_encoder(self):
        if self._image_encoder is None:
            # The same features the model was trained on (e.g. with the colour histogram).
            self._image_encoder = self.model.make_image_encoder()
        return self._image_encoder

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            from shelfwise.encoders.text import TextEncoder

            self._text_encoder = TextEncoder()
        return self._text_encoder

    def item_vectors(self, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """[n, dim] aligned vectors and [n] bool "has a usable photo or name"; fills ``skipped``."""
        aligner = self.model.aligner
        n = len(items)
        total = np.zeros((n, aligner.dim), np.float32)
        count = np.zeros(n, np.float32)
        titles = items["title"].fillna("").astype(str).to_numpy() if "title" in items else np.full(n, "")
        has_title = np.array([bool(t.strip()) for t in titles])
        if has_title.any():
            features = self.text_encoder.encode(list(titles[has_title]), progress=self.progress)
            total[has_title] += aligner.embed_texts(features, side="item")
            count[has_title] += 1
        paths = items["image"].fillna("").astype(str).to_numpy() if "image" in items else np.full(n, "")
        has_path = paths != ""
        if has_path.any():
            encoded = self.image_encoder.encode_detailed(list(paths[has_path]), progress=self.progress)
            rows = np.flatnonzero(has_path)
            for position, reason in encoded.errors.items():
                self.skipped[str(items["item_id"].iloc[rows[position]])] = reason
            good = rows[encoded.ok]
            total[good] += aligner.embed_images(encoded.vectors[encoded.ok], side="item")
            count[good] += 1
        usable = count > 0
        for i in np.flatnonzero(~usable & ~has_path):
            self.skipped[str(items["item_id"].iloc[i])] = "no title and no image"
        vectors = total / np.maximum(count, 1)[:, None]
        if aligner.unit_vectors:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors, usable

    def fit(self, items: pd.DataFrame) -> "MultimodalSearch":
        self.skipped = {}
        vectors, usable = self.item_vectors(items)
        ids = items["item_id"].astype(str).to_numpy()
        self.index.fit(list(ids[usable]), vectors[usable])
        titles = items["title"].fillna("").astype(str) if "title" in items else pd.Series([""] * len(items))
        self.titles = dict(zip(ids, titles))
        return self

    def _pages(self, queries: np.ndarray, top: int) -> list[SearchPage]:
        return [SearchPage(hits=[Hit(i, s) for i, s in row], total=len(self.index)) for row in self.index.search(queries, top=top)]

    def search_text(self, queries: Sequence[str], top: int = 10) -> list[SearchPage]:
        """Text queries against the photos (and names) of the catalogue."""
        if not len(queries):
            return []
        return self._pages(self.model.aligner.embed_texts(self.text_encoder.encode(list(queries)), side="query"), top)

    def search_images(self, images: Sequence, top: int = 10) -> list[SearchPage]:
        """Photos (paths or bytes) -> similar products. A photo that cannot be read raises
        :class:`shelfwise.encoders.image.ImageReadError` (a query, unlike a catalogue item, cannot be skipped)."""
        from shelfwise.encoders.image import ImageReadError

        encoded = self.image_encoder.encode_detailed(list(images))
        if encoded.errors:
            raise ImageReadError("; ".join(encoded.errors.values()))
        return self._pages(self.model.aligner.embed_images(encoded.vectors, side="query"), top)
