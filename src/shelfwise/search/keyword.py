"""Keyword search over the catalogue with tantivy (BM25).

Title, description, brand and category are analysed (units written one way, lower-cased,
English-stemmed) and searched together with a boost per field. Each query word matches exactly
(BM25), within one edit (typo tolerance: a small constant bonus, so exact matches still rank first)
and, for the last word, as a prefix (autocomplete while typing); neighbouring query words found
side by side in a title earn a bonus. A query word the catalogue never uses also searches as its
spelling correction ("elrctric" -> "electric", "deckboard" -> "deck board"), from a vocabulary of
the indexed text that grows with the catalogue. Filters, facet counts, sorting and pagination are
done by tantivy itself, so they stay fast on the whole catalogue.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from shelfwise.search.suggest import SpellingCorrector

ANALYZER = "shelf_text"
TEXT_FIELDS = ("title", "description", "brand", "category")
DEFAULT_BOOSTS = {"title": 3.0, "brand": 2.0, "category": 1.5, "description": 1.0}
# Raw (un-analysed) copies used for exact filters and facet counts.
EXACT_FIELDS = {"brand": "brand_exact", "category": "category_exact"}
FACET_FIELDS = {"brand": "brand_exact", "category": "category_exact", "in_stock": "in_stock"}
# Edges of the "price" facet's bands: 0-25, 25-50, ..., 500+ (a shop's usual price filters).
PRICE_EDGES = (25.0, 50.0, 100.0, 200.0, 500.0)
KEYS_FILE = "shelfwise_keys.json"
SETTINGS_FILE = "shelfwise_keyword.json"
VOCABULARY_FILE = "shelfwise_vocabulary.json"

# A number's unit, however it is written ("10ft", "10 feet", "10'"), becomes one token, so that
# "1/2 inch" meets "1/2 in." and "2x4" meets "2 in. x 4 in.". Applied to items and queries alike.
UNIT_SPELLINGS = [
    (r"in\.|inches|inch|in\b|\"", "in"),
    (r"ft\.|feet|foot|ft\b|'(?![a-z])", "ft"),  # not the 's of "1990's"
    (r"sq\.?\s*ft\.?|square\s*(?:feet|foot)", "sqft"),
    (r"cu\.?\s*ft\.?|cubic\s*(?:feet|foot)", "cuft"),
    (r"gal\.|gallons|gallon|gal\b", "gal"),
    (r"lb\.|lbs\.?|pounds|pound|lb\b", "lb"),
    (r"oz\.|ounces|ounce|oz\b", "oz"),
    (r"volts|volt|v\b", "volt"),
    (r"watts|watt|w\b", "watt"),
    (r"amps|amp|a\b", "amp"),
    (r"x(?=\s*\d)", "x"),
]
# Square and cubic feet before feet, so "sq. ft." is not read as "sq. ft" + "ft".
_UNITS = [(re.compile(rf"(\d)\s*(?:{pattern})", re.IGNORECASE), rf"\1 {unit} ")
          for pattern, unit in sorted(UNIT_SPELLINGS, key=lambda pu: pu[1] not in ("sqft", "cuft"))]


def normalise_units(text: str) -> str:
    for pattern, replacement in _UNITS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class Filters:
    """Restrictions on which items may be returned; ``None`` means no restriction."""

    category: str | list[str] | None = None
    brand: str | list[str] | None = None
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool | None = None


@dataclass
class Hit:
    item_id: str
    score: float


@dataclass
class SearchPage:
    hits: list[Hit]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def item_ids(self) -> list[str]:
        return [h.item_id for h in self.hits]


def _sort_orders():
    import tantivy

    # sort name -> (fast field, order); None means by relevance score.
    return {
        "relevance": None,
        "price_asc": ("price", tantivy.Order.Asc),
        "price_desc": ("price", tantivy.Order.Desc),
        "popularity": ("popularity", tantivy.Order.Desc),
    }


SORTS = ("relevance", "price_asc", "price_desc", "popularity")


def _analyzer():
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("item_id", stored=True, tokenizer_name="raw")
    # tantivy hands back only numeric fast fields per hit; an integer key maps a hit to its item id
    # without reading the document store.
    builder.add_integer_field("key", indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=ANALYZER)
    for name in EXACT_FIELDS.values():
        builder.add_text_field(name, fast=True, tokenizer_name="raw")
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_float_field("popularity", indexed=True, fast=True)
    builder.add_boolean_field("in_stock", indexed=True, fast=True)
    return builder.build()


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _band_label(low: float | None, high: float | None) -> str:
    return f"{low or 0:g}+" if high is None else f"{low or 0:g}-{high:g}"


def price_band(price: float, edges: Sequence[float] = PRICE_EDGES) -> str:
    """The ``price`` facet's label for a price: "0-25", "25-50", ..., "500+" (a band holds its lower edge)."""
    position = bisect.bisect_right(edges, price)
    return _band_label(edges[position - 1] if position else None, edges[position] if position < len(edges) else None)


class KeywordIndex:
    """A tantivy index of items. ``fit(items)`` builds it; ``search(query, ...)`` returns a :class:`SearchPage`.

    ``items`` is a DataFrame with ``item_id`` and ``title`` and, optionally, ``description``,
    ``category``, ``brand``, ``price``, ``popularity`` and ``in_stock``. With ``path`` the index
    lives on disk (reopen it with :meth:`open`); without, it is in memory.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        field_boosts: dict[str, float] | None = None,
        fuzzy_distance: int = 1,
        fuzzy_min_length: int = 5,
        fuzzy_weight: float = 0.3,
        prefix_min_length: int = 2,
        prefix_weight: float = 0.5,
        phrase_weight: float = 0.17,
        correct_spelling: bool = True,
        synonyms=None,
        writer_heap_bytes: int = 64_000_000,
    ):
        self.path = Path(path) if path else None
        self.field_boosts = dict(field_boosts or DEFAULT_BOOSTS)
        unknown = set(self.field_boosts) - set(TEXT_FIELDS)
        if unknown:
            raise ValueError(f"unknown text fields {sorted(unknown)}; expected some of {TEXT_FIELDS}")
        self.fuzzy_distance = fuzzy_distance
        self.fuzzy_min_length = fuzzy_min_length
        self.fuzzy_weight = fuzzy_weight
        self.prefix_min_length = prefix_min_length
        self.prefix_weight = prefix_weight
        self.phrase_weight = phrase_weight
        self.correct_spelling = correct_spelling
        self.synonyms = synonyms  # a shelfwise.search.synonyms.LearnedSynonyms: more title words per query word (not saved)
        self.spelling = SpellingCorrector()
        self.writer_heap_bytes = writer_heap_bytes
        self._index = None
        self._schema = None
        self._analyzer = None
        self._item_ids: dict[int, str] = {}
        self._keys: dict[str, int] = {}
        self._next_key = 0

    # ---- building -------------------------------------------------------------------------

    def _create(self) -> None:
        import tantivy

        self._schema = _schema()
        if self.path is not None:
            if self.path.exists() and any(self.path.iterdir()):
                # Only ever delete a folder that holds an index of ours: a wrong path must not wipe data.
                if not (self.path / "meta.json").is_file():
                    raise FileExistsError(f"{self.path} is not empty and holds no keyword index; choose an empty folder")
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
            self._index = tantivy.Index(self._schema, path=str(self.path), reuse=False)
        else:
            self._index = tantivy.Index(self._schema)
        self._register()
        self._item_ids, self._keys, self._next_key = {}, {}, 0
        self.spelling = SpellingCorrector()

    def _register(self) -> None:
        self._analyzer = _analyzer()
        self._index.register_tokenizer(ANALYZER, self._analyzer)

    def fit(self, items: pd.DataFrame, progress: bool = False) -> "KeywordIndex":
        """Build a fresh index of ``items`` (replacing whatever the index held)."""
        self._create()
        return self.add(items, progress=progress)

    def add(self, items: pd.DataFrame, progress: bool = False) -> "KeywordIndex":
        """Add or replace items (an item id already indexed is replaced)."""
        import tantivy

        if self._index is None:
            self._create()
        if "item_id" not in items.columns or "title" not in items.columns:
            raise ValueError(f"items need columns item_id and title; got {list(items.columns)}")
        writer = self._index.writer(heap_size=self.writer_heap_bytes, num_threads=1)
        rows = items.to_dict("records")
        if progress:
            from tqdm import tqdm

            rows = tqdm(rows, desc="keyword index", unit="item")
        texts = []
        for row in rows:
            item_id = str(row["item_id"])
            if item_id in self._keys:
                writer.delete_documents_by_term("item_id", item_id)
                self._item_ids.pop(self._keys.pop(item_id), None)
            key = self._next_key
            self._next_key += 1
            doc = tantivy.Document(item_id=item_id, key=key)
            for name in TEXT_FIELDS:
                text = _text(row.get(name))
                if text:
                    doc.add_text(name, normalise_units(text))
                    texts.append(text)
                    if name in EXACT_FIELDS:
                        doc.add_text(EXACT_FIELDS[name], text)
            for name in ("price", "popularity"):
                number = _number(row.get(name))
                if number is not None:
                    doc.add_float(name, number)
            if row.get("in_stock") is not None and not (isinstance(row.get("in_stock"), float) and math.isnan(row["in_stock"])):
                doc.add_boolean("in_stock", bool(row["in_stock"]))
            writer.add_document(doc)
            self._keys[item_id] = key
            self._item_ids[key] = item_id
        self.spelling.add(texts)
        self._commit(writer)
        return self

    def remove(self, item_ids: Iterable[str]) -> "KeywordIndex":
        """Remove items by id; unknown ids are ignored."""
        writer = self._index.writer(heap_size=self.writer_heap_bytes, num_threads=1)
        for item_id in map(str, item_ids):
            if item_id in self._keys:
                writer.delete_documents_by_term("item_id", item_id)
                self._item_ids.pop(self._keys.pop(item_id), None)
        self._commit(writer)
        return self

    def _commit(self, writer) -> None:
        writer.commit()
        writer.wait_merging_threads()
        self._index.reload()
        if self.path is not None:
            (self.path / KEYS_FILE).write_text(json.dumps({"next_key": self._next_key, "keys": self._keys}))
            (self.path / SETTINGS_FILE).write_text(json.dumps(self.settings()))
            (self.path / VOCABULARY_FILE).write_text(json.dumps(self.spelling.counts))

    def settings(self) -> dict:
        return {
            "field_boosts": self.field_boosts,
            "fuzzy_distance": self.fuzzy_distance,
            "fuzzy_min_length": self.fuzzy_min_length,
            "fuzzy_weight": self.fuzzy_weight,
            "prefix_min_length": self.prefix_min_length,
            "prefix_weight": self.prefix_weight,
            "phrase_weight": self.phrase_weight,
            "correct_spelling": self.correct_spelling,
        }

    @classmethod
    def open(cls, path: Path | str, **overrides) -> "KeywordIndex":
        """Reopen an index built with ``path``; keyword arguments override its saved settings."""
        import tantivy

        path = Path(path)
        if not (path / KEYS_FILE).is_file():
            raise FileNotFoundError(f"no shelfwise keyword index at {path}")
        saved = json.loads((path / SETTINGS_FILE).read_text())
        self = cls(path=path, **{**saved, **overrides})
        self._index = tantivy.Index.open(str(path))
        self._schema = self._index.schema
        self._register()
        keys = json.loads((path / KEYS_FILE).read_text())
        self._keys = {k: int(v) for k, v in keys["keys"].items()}
        self._item_ids = {v: k for k, v in self._keys.items()}
        self._next_key = int(keys["next_key"])
        if (path / VOCABULARY_FILE).is_file():
            self.spelling.add_counts(json.loads((path / VOCABULARY_FILE).read_text()))
        return self

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, item_id: str) -> bool:
        return str(item_id) in self._keys

    # ---- querying -------------------------------------------------------------------------

    def analyze(self, text: str) -> list[str]:
        """The index's own tokens for ``text`` (units written one way, lower-cased, stemmed)."""
        return self._analyzer.analyze(normalise_units(text))

    def corrected(self, text: str) -> str:
        """``text`` with each word the catalogue never uses replaced by its spelling correction
        (``text`` itself when ``correct_spelling`` is off)."""
        return self.spelling.correct(text) if self.correct_spelling else text

    def _text_query(self, text: str):
        import tantivy

        tokens = self.analyze(text)
        if not tokens:
            return None
        # Corrections are searched beside the words as typed: an unknown word matches nothing
        # exactly, so the correction decides, while a word the shop does use is never replaced.
        spelled = self.analyze(self.corrected(text))
        clauses = []
        for token in dict.fromkeys(tokens + spelled):
            for name, boost in self.field_boosts.items():
                clauses.append(tantivy.Query.boost_query(tantivy.Query.term_query(self._schema, name, token), boost))
                if self.fuzzy_distance and len(token) >= self.fuzzy_min_length:
                    fuzzy = tantivy.Query.fuzzy_term_query(self._schema, name, token, distance=self.fuzzy_distance)
                    clauses.append(tantivy.Query.boost_query(fuzzy, boost * self.fuzzy_weight))
        title_boost = self.field_boosts.get("title", 1.0)
        if self.synonyms is not None:
            # What the shop's titles say for a query word ("shelves" -> "shelf"), learned from its judged searches.
            for token, share in self.synonyms.expand(spelled):
                clauses.append(tantivy.Query.boost_query(tantivy.Query.term_query(self._schema, "title", token), title_boost * share))
        if self.phrase_weight:
            # Words next to each other in the query and in a title ("deck board", not "deck ... board").
            for pair in {(a, b) for a, b in zip(spelled, spelled[1:]) if a != b}:
                phrase = tantivy.Query.phrase_query(self._schema, "title", list(pair))
                clauses.append(tantivy.Query.boost_query(phrase, title_boost * self.phrase_weight))
        last = tokens[-1]
        if self.prefix_weight and len(last) >= self.prefix_min_length:
            # Autocomplete: the word being typed matches any word it begins (title only: cheap and precise).
            prefix = tantivy.Query.fuzzy_term_query(self._schema, "title", last, distance=0, prefix=True)
            clauses.append(tantivy.Query.boost_query(prefix, title_boost * self.prefix_weight))
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in clauses])

    def _filter_queries(self, filters: Filters | None) -> list:
        import tantivy

        if filters is None:
            return []
        out = []
        for name in ("category", "brand"):
            value = getattr(filters, name)
            if value is None:
                continue
            values = [value] if isinstance(value, str) else list(value)
            out.append(tantivy.Query.term_set_query(self._schema, EXACT_FIELDS[name], values))
        if filters.min_price is not None or filters.max_price is not None:
            out.append(
                tantivy.Query.range_query(
                    self._schema,
                    "price",
                    tantivy.FieldType.Float,
                    float(filters.min_price) if filters.min_price is not None else float("-inf"),
                    float(filters.max_price) if filters.max_price is not None else float("inf"),
                )
            )
        if filters.in_stock is not None:
            out.append(tantivy.Query.term_query(self._schema, "in_stock", bool(filters.in_stock)))
        # Score 0: a filter decides membership, never the ranking.
        return [tantivy.Query.const_score_query(q, 0.0) for q in out]

    def query(self, text: str, filters: Filters | None = None):
        """The tantivy query for ``text`` under ``filters``; an empty text matches every item (browsing)."""
        import tantivy

        text_query = self._text_query(text or "")
        filter_queries = self._filter_queries(filters)
        if text_query is None:
            text_query = tantivy.Query.all_query()
        if not filter_queries:
            return text_query
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in [text_query, *filter_queries]])

    def search(
        self,
        text: str,
        top: int = 10,
        offset: int = 0,
        filters: Filters | None = None,
        sort: str = "relevance",
        facets: Iterable[str] = (),
        facet_size: int = 20,
    ) -> SearchPage:
        """One page of results: ``top`` hits after skipping ``offset``, the total match count and,
        for each name in ``facets`` (``brand``, ``category``, ``in_stock``), value -> count; the
        ``price`` facet counts matches per band of :data:`PRICE_EDGES` (see :func:`price_band`)."""
        orders = _sort_orders()
        if sort not in orders:
            raise ValueError(f"unknown sort {sort!r}; expected one of {SORTS}")
        if self._index is None or not self._keys:
            return SearchPage(hits=[], total=0, facets={name: {} for name in facets})
        query = self.query(text, filters)
        searcher = self._index.searcher()
        by = orders[sort]
        if by is None:
            result = searcher.search(query, limit=top, offset=offset, count=True)
        else:
            result = searcher.search(query, limit=top, offset=offset, count=True, order_by_field=by[0], order=by[1])
        addresses = [address for _, address in result.hits]
        keys = searcher.fast_field_values("key", addresses) if addresses else []
        hits = [
            Hit(self._item_ids[int(key)], float(score) if score is not None else float("nan"))
            for (score, _), key in zip(result.hits, keys)
        ]
        return SearchPage(hits=hits, total=int(result.count), facets=self._facets(searcher, query, facets, facet_size))

    def matching(self, item_ids: Sequence[str], filters: Filters | None) -> set[str]:
        """Those of ``item_ids`` that pass ``filters`` (lets other retrievers share the keyword filters)."""
        import tantivy

        item_ids = [str(i) for i in item_ids if str(i) in self._keys]
        if filters is None or not item_ids:
            return set(item_ids)
        ids_query = tantivy.Query.term_set_query(self._schema, "item_id", item_ids)
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in [ids_query, *self._filter_queries(filters)]])
        searcher = self._index.searcher()
        result = searcher.search(query, limit=len(item_ids), count=False)
        keys = searcher.fast_field_values("key", [address for _, address in result.hits]) if result.hits else []
        return {self._item_ids[int(key)] for key in keys}

    def _facets(self, searcher, query, names: Iterable[str], size: int) -> dict[str, dict[str, int]]:
        names = list(names)
        unknown = set(names) - set(FACET_FIELDS) - {"price"}
        if unknown:
            raise ValueError(f"unknown facets {sorted(unknown)}; expected some of {sorted([*FACET_FIELDS, 'price'])}")
        if not names:
            return {}
        request = {name: {"terms": {"field": FACET_FIELDS[name], "size": size}} for name in names if name != "price"}
        if "price" in names:
            bands = zip((None, *PRICE_EDGES), (*PRICE_EDGES, None))
            request["price"] = {"range": {"field": "price", "ranges": [
                {k: v for k, v in (("from", low), ("to", high)) if v is not None} for low, high in bands]}}
        result = searcher.aggregate(query, request)
        out = {
            name: {str(b.get("key_as_string", b["key"])): int(b["doc_count"]) for b in result.get(name, {}).get("buckets", [])}
            for name in names if name != "price"
        }
        if "price" in names:
            out["price"] = {_band_label(b.get("from"), b.get("to")): int(b["doc_count"])
                            for b in result["price"]["buckets"] if b["doc_count"]}
        return out

    def terms_with_prefix(self, prefix: str, limit: int = 10) -> list[tuple[str, int]]:
        """Indexed title words (stemmed) starting with ``prefix``, with their document counts."""
        searcher = self._index.searcher()
        return searcher.terms_with_prefix("title", prefix.lower(), limit=limit)
