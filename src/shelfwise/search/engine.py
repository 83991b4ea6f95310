"""One object that builds every retriever over a catalogue and answers queries in any mode.

Used by ``shelfwise search run``, the benchmarks and (later) the API. Building the semantic index
means encoding the whole catalogue (minutes on a CPU), so with ``cache_dir`` the built indexes are
kept in a folder named after the catalogue's content and the encoder, and reused next time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from shelfwise.search.hybrid import HybridSearch
from shelfwise.search.keyword import KeywordIndex, SearchPage
from shelfwise.search.semantic import ITEM_TEXT_FIELDS, SemanticSearch, VectorIndex, item_texts

# Bump when the index layout or item text changes, so old caches are not reused.
CACHE_FORMAT = 2
ITEM_COLUMNS = ("item_id", "title", "description", "category", "brand", "price", "popularity", "in_stock")


def read_products(path: Path | str) -> pd.DataFrame:
    """A products CSV as the items frame: ``product_id`` (or ``item_id``), ``title`` and any of
    description, category, brand, price, popularity, in_stock."""
    path = Path(path)
    items = pd.read_csv(path, dtype={"product_id": str, "item_id": str}, keep_default_na=False, na_values=[""])
    if "item_id" not in items.columns and "product_id" in items.columns:
        items = items.rename(columns={"product_id": "item_id"})
    missing = {"item_id", "title"} - set(items.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; found {list(items.columns)}")
    if items["item_id"].isna().any():
        line = int(items.index[items["item_id"].isna()][0]) + 2
        raise ValueError(f"{path}, line {line}: empty item id")
    duplicated = items["item_id"].duplicated()
    if duplicated.any():
        line = int(items.index[duplicated][0]) + 2
        raise ValueError(f"{path}, line {line}: duplicate item id {items['item_id'][duplicated].iloc[0]!r}")
    items["title"] = items["title"].fillna("").astype(str)
    return items[[c for c in ITEM_COLUMNS if c in items.columns]]


def _fingerprint(items: pd.DataFrame, encoder_id: str) -> str:
    digest = hashlib.sha1(f"{CACHE_FORMAT}|{encoder_id}|".encode())  # encoder_id "keyword" for the keyword index
    digest.update(pd.util.hash_pandas_object(items.astype(str), index=False).values.tobytes())
    return digest.hexdigest()[:16]


class SearchEngine:
    """Keyword, semantic and hybrid search over one catalogue.

    ``encoder`` is a :class:`shelfwise.encoders.TextEncoder` or an :class:`~shelfwise.encoders.OnnxTextEncoder`
    (both have ``encode`` and ``dim``); ``encoder_id`` names it in the cache
    key (e.g. the fine-tuned artifact's path). ``fusion``, ``weights``, ``rrf_k`` and ``candidates``
    configure the hybrid mode (default: weighted score fusion, keyword 1 : semantic 0.5, the best on Home
    Depot's validation queries for both the pretrained and the fine-tuned encoder); ``learned_fusion``
    reorders its top; ``reranker`` enables hybrid-rerank.
    """

    def __init__(
        self,
        encoder,
        encoder_id: str = "all-MiniLM-L6-v2",
        cache_dir: Path | str | None = None,
        fusion: str = "weighted",
        weights: tuple[float, float] = (1.0, 0.5),
        rrf_k: float = 60.0,
        candidates: int = 100,
        keyword_options: dict | None = None,
        vector_options: dict | None = None,
        reranker=None,
        learned_fusion=None,
        progress: bool = False,
        cache_keyword: bool = True,
    ):
        self.encoder = encoder
        self.encoder_id = encoder_id
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.fusion = fusion
        self.weights = tuple(weights)
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.keyword_options = dict(keyword_options or {})
        self.vector_options = dict(vector_options or {})
        self.reranker = reranker  # a shelfwise.search.rerank.Reranker enables "hybrid-rerank"
        self.learned_fusion = learned_fusion  # a shelfwise.search.learned_fusion.LearnedFusion reorders the hybrid top
        self.progress = progress
        # False keeps the keyword index in memory (it builds in a second): a server that adds items
        # to it must not write into a cache folder that other processes read.
        self.cache_keyword = cache_keyword
        self._texts: dict[str, str] | None = None
        self._items: pd.DataFrame | None = None
        self._keyword_folder: Path | None = None
        self._vectors_folder: Path | None = None
        self._keyword: KeywordIndex | None = None
        self._semantic: SemanticSearch | None = None
        self._hybrid: HybridSearch | None = None

    def fit(self, items: pd.DataFrame) -> "SearchEngine":
        """Take the catalogue. Each index is built (or loaded from the cache) the first time a mode
        needs it, so a keyword-only run never pays for encoding the catalogue."""
        self._items = items
        self._keyword_folder = self.cache_dir / _fingerprint(items, "keyword") / "keyword" if self.cache_dir and self.cache_keyword else None
        self._keyword = self._texts = None
        return self.use_encoder(self.encoder, self.encoder_id)

    def use_encoder(self, encoder, encoder_id: str) -> "SearchEngine":
        """Search with another text encoder: the semantic index is built (or loaded from the
        cache of that encoder) the next time a mode needs it; the keyword index stays."""
        self._require_fit()
        self.encoder, self.encoder_id = encoder, encoder_id
        # Vectors depend on the item text only: price, stock and popularity change daily and must
        # not make the catalogue be encoded again.
        text_columns = ["item_id", *(c for c in ITEM_TEXT_FIELDS if c in self._items.columns)]
        self._vectors_folder = self.cache_dir / _fingerprint(self._items[text_columns], encoder_id) / "vectors" if self.cache_dir else None
        self._semantic = self._hybrid = None
        return self

    @property
    def texts(self) -> dict[str, str]:
        """item id -> the text the encoders read (the reranker needs it per hit)."""
        self._require_fit()
        if self._texts is None:
            self._texts = dict(zip(self._items["item_id"].astype(str), item_texts(self._items)))
        return self._texts

    def update_texts(self, items: pd.DataFrame) -> None:
        """Take the text of items added or changed since ``fit`` (a server adds them as they come):
        the learned fusion and the reranker read it. The indexes are updated by their own ``add``."""
        changed = dict(zip(items["item_id"].astype(str), item_texts(items)))
        self.texts.update(changed)
        if self._hybrid is not None:
            self._hybrid.forget_tokens(changed)

    def _require_fit(self) -> None:
        if self._items is None:
            raise RuntimeError("fit(items) first")

    @property
    def keyword(self) -> KeywordIndex:
        self._require_fit()
        if self._keyword is None:
            folder = self._keyword_folder
            if folder is not None and (folder / "complete.json").is_file():
                self._keyword = KeywordIndex.open(folder, **self.keyword_options)
            else:
                self._keyword = KeywordIndex(path=folder, **self.keyword_options).fit(self._items, progress=self.progress)
                if folder is not None:
                    (folder / "complete.json").write_text(json.dumps({"items": len(self._items)}))
        return self._keyword

    @property
    def semantic(self) -> SemanticSearch:
        self._require_fit()
        if self._semantic is None:
            folder = self._vectors_folder
            if folder is not None and (folder / "complete.json").is_file():
                self._semantic = SemanticSearch(self.encoder, VectorIndex.load(folder), progress=self.progress)
            else:
                index = VectorIndex(dim=self.encoder.dim, **self.vector_options)
                self._semantic = SemanticSearch(self.encoder, index, progress=self.progress).fit(self._items)
                if folder is not None:
                    self._semantic.index.save(folder)
                    (folder / "complete.json").write_text(json.dumps({"items": len(self._items), "encoder": self.encoder_id}))
        return self._semantic

    @property
    def hybrid(self) -> HybridSearch:
        if self._hybrid is None:
            self._hybrid = HybridSearch(
                self.keyword, self.semantic, fusion=self.fusion, weights=self.weights, rrf_k=self.rrf_k, candidates=self.candidates,
                learned=self.learned_fusion, texts=self.texts,
            )
        return self._hybrid

    @property
    def modes(self) -> dict[str, Callable[[Sequence[str], int], list[SearchPage]]]:
        """mode name -> batch search function (queries, top) -> pages."""
        return {
            "keyword": lambda queries, top: [self.keyword.search(q, top=top) for q in queries],
            "semantic": lambda queries, top: self.semantic.search_many(queries, top=top),
            "hybrid": lambda queries, top: self.hybrid.search_many(queries, top=top),
            "hybrid-rerank": self._hybrid_rerank,
        }

    def _hybrid_rerank(self, queries: Sequence[str], top: int) -> list[SearchPage]:
        if self.reranker is None:
            raise ValueError("mode hybrid-rerank needs a reranker (search finetune --target cross-encoder)")
        return [
            SearchPage(hits=self.reranker.rerank(q, page.hits, self.texts), total=page.total)
            for q, page in zip(queries, self.hybrid.search_many(queries, top=top))
        ]

    def search_many(self, queries: Sequence[str], mode: str = "hybrid", top: int = 100) -> list[SearchPage]:
        if mode not in self.modes:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(self.modes)}")
        return self.modes[mode](list(queries), top)

    def search(self, query: str, mode: str = "hybrid", top: int = 10) -> SearchPage:
        return self.search_many([query], mode=mode, top=top)[0]


MODES = ("keyword", "semantic", "hybrid", "hybrid-rerank")
