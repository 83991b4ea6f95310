"""The shop's search as the API serves it: a :class:`SearchEngine` over the store's catalogue,
spelling correction and autocomplete, personalised re-ranking, search by photo and by voice.

Start-up: the keyword index, the item cards and the suggestions are built from the store when
the app is made (about a second for 5,000 items). The semantic index (MiniLM over every item:
about a minute for 5,000 items on one core) and the photo index are built by a background worker
once the app starts serving; the vectors are cached under ``<home>/search/indexes`` so the next
start loads them in a second. Until the semantic index is ready, semantic and hybrid requests are
answered from the keyword index, and the answer says so (``mode``).

A request touches no pandas and no SQL (the router reads the shopper's history, the one query):
item cards are plain objects, and query vectors are cached, since shops see the same queries
again and again.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from shelfwise.config import Settings
from shelfwise.datasets.store_data import ITEM_EVENTS
from shelfwise.search.engine import ITEM_COLUMNS, SearchEngine
from shelfwise.search.keyword import Filters, Hit, SearchPage, price_band
from shelfwise.search.learned_fusion import ARTIFACT_NAME as FUSION_MODEL_NAME, LearnedFusion
from shelfwise.search.synonyms import ARTIFACT_NAME as SYNONYMS_NAME, LearnedSynonyms
from shelfwise.search.semantic import item_texts, single_threaded
from shelfwise.search.suggest import QuerySuggester, normalise
from shelfwise.serving.encoder import serving_text_encoder
from shelfwise.serving.recommend import LRU
from shelfwise.serving.search_results import Affinity, Found, ItemCard, SearchOutcome, SearchRequest, item_cards
from shelfwise.store import Store, items as items_table

log = logging.getLogger("shelfwise.search")

SEMANTIC_ENV = "SHELFWISE_SEARCH_SEMANTIC"  # "0": keyword search only (no MiniLM in the process)
TEXT_MODES = ("keyword", "semantic", "hybrid")
FACETS = ("category", "brand", "price")
FACET_SIZE = 20
CANDIDATES = 100  # how deep each retriever is read for fusion, sorting and personal re-ranking
QUERY_VECTOR_CACHE = 20_000
ANSWER_CACHE = 5_000  # pages of results (~5 KB each)
PHOTO_MODEL_FOLDER = "multimodal"  # <home>/artifacts/multimodal (bench multimodal --out writes model/ in it)


class SearchUnavailable(RuntimeError):
    """A search that cannot be answered now (no photo model, an index still being built): 503."""


def semantic_enabled(flag: bool | None) -> bool:
    return flag if flag is not None else os.environ.get(SEMANTIC_ENV, "1") != "0"


def model_path(settings: Settings, name: str) -> Path | None:
    """The model named ``name`` under the home's artifacts (its root or a ``model`` folder in it), if one was trained."""
    root = settings.artifacts / name
    for folder in (root, root / "model"):
        if (folder / "latest").is_file() or (folder / "config.json").is_file():
            return folder
    return None


def photo_model_path(settings: Settings) -> Path | None:
    return model_path(settings, PHOTO_MODEL_FOLDER)


def how_to_train_photos(settings: Settings) -> str:
    return (f"search by photo needs a multimodal model under {settings.artifacts / PHOTO_MODEL_FOLDER}: train one with "
            f"`shelfwise --home {settings.home} bench multimodal --data ../shared/data/fashion "
            f"--out {settings.artifacts / PHOTO_MODEL_FOLDER}`, then restart the API")


@dataclass
class _Retrieved:
    hits: list[Hit]  # ranked, not yet paged (or, with ``paged``, exactly the page)
    total: int
    facets: dict | None = None  # from the keyword index; None = count over ``hits``
    paged: bool = False
    retrievers: dict[str, tuple[str, ...]] | None = None
    words: list = field(default_factory=list)  # (query word, token lists it matches through): matched terms


class SearchService:
    """Search over the store's catalogue. ``start()`` launches the background worker (semantic
    and photo indexes, then updates); ``close()`` stops it."""

    def __init__(self, settings: Settings, store: Store, semantic: bool | None = None, metrics=None,
                 encoder_factory=serving_text_encoder):
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.encoder_factory = encoder_factory
        self.semantic_wanted = semantic_enabled(semantic)
        # Index reads and writes: tantivy's id maps and faiss must not change under a search.
        self._lock = threading.RLock()
        self._jobs: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._semantic = None  # a SemanticSearch once built
        self._photos = None  # a MultimodalSearch once built
        self._recognizer = None
        self._recognizer_lock = threading.Lock()
        self.query_vectors = LRU(QUERY_VECTOR_CACHE)
        self._clear_caches()
        self.state = {"semantic": "waiting" if self.semantic_wanted else "off",
                      "photos": "waiting" if photo_model_path(settings) else "no model",
                      "fusion": "waiting" if self.semantic_wanted and model_path(settings, FUSION_MODEL_NAME) else "weighted",
                      "synonyms": "none"}

        self._popularity = self._read_popularity()
        frame = self._catalogue_frame()
        self.engine = SearchEngine(None, cache_dir=settings.home / "search" / "indexes", candidates=CANDIDATES,
                                   cache_keyword=False).fit(frame)
        self.keyword = self.engine.keyword  # built now, in memory
        self.keyword.synonyms = self._load_learned("synonyms", SYNONYMS_NAME, LearnedSynonyms.load)
        self._set_cards(item_cards(frame, self._popularity, self.keyword.analyze))
        self._past_queries = self._read_past_queries()
        self._fit_suggestions()
        self._report_sizes()
        if self.semantic_wanted:
            self._jobs.put(self._build_semantic)
        if self.state["photos"] == "waiting":
            self._jobs.put(self._build_photos)

    # ---- building -------------------------------------------------------------------------

    def _catalogue_frame(self, ids: list[str] | None = None) -> pd.DataFrame:
        query = sa.select(items_table)
        if ids is not None:
            query = query.where(items_table.c.item_id.in_(ids))
        frame = self.store.read_frame(query.order_by(items_table.c.item_id))
        frame["popularity"] = frame["item_id"].map(self._popularity).fillna(0.0)
        return frame[[c for c in (*ITEM_COLUMNS, "image") if c in frame.columns]]

    def _set_cards(self, cards: dict[str, ItemCard]) -> None:
        # Replaced whole, never changed in place: a request iterating them never sees a change.
        self.cards = cards
        self.categories = frozenset(c.category for c in cards.values() if c.category)

    def _read_popularity(self) -> dict[str, float]:
        types = ", ".join(f"'{t}'" for t in ITEM_EVENTS)  # our own constants, not input
        counts = self.store.read_frame(f"SELECT item_id, COUNT(*) AS n FROM events WHERE item_id IS NOT NULL AND type IN ({types}) "
                                       "GROUP BY item_id")
        return dict(zip(counts["item_id"], counts["n"].astype(float)))

    def _read_past_queries(self) -> list[str]:
        counts = self.store.read_frame("SELECT query, COUNT(*) AS n FROM events WHERE type = 'search' AND query IS NOT NULL "
                                       "GROUP BY query")
        return counts["query"].repeat(counts["n"]).tolist()

    def _fit_suggestions(self) -> None:
        cards = list(self.cards.values())
        # Spelling is the keyword index's own vocabulary (every word it indexed, grown by upsert):
        # queries are corrected with the words the index searches them with.
        corrector = self.keyword.spelling
        # Past queries with a word the corrector would change are typos ("cordess drill"): they
        # are not offered back to shoppers. Few distinct words, so each is corrected once.
        fixed: dict[str, str] = {}
        for word in {w for q in set(self._past_queries) for w in normalise(q).split()}:
            fixed[word] = corrector.correct_word(word)
        spelled = [q for q in self._past_queries if all(fixed[w] == w for w in normalise(q).split())]
        suggester = QuerySuggester(corrector=corrector).fit([c.title for c in cards], spelled)
        self.suggester = suggester

    def start(self) -> None:
        """Run the queued builds (and later updates) in a background thread."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="search-indexer", daemon=True)
            self._worker.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the background worker: the job it is running finishes (up to ``timeout`` seconds are
        waited for), queued ones are dropped. A worker left inside torch or faiss when the process
        exits can abort it."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._jobs.put(None)
        if self._worker is not None:
            self._worker.join(timeout)

    def _work(self) -> None:
        try:
            # Lower priority (Linux: per thread): index builds must not slow the requests down.
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception as e:  # a failed build leaves keyword search working; say why
                log.exception("search index job failed")
                key = "photos" if job == self._build_photos else "semantic"
                if self.state.get(key) == "building":
                    self.state[key] = f"failed: {type(e).__name__}: {e}"

    def _build_semantic(self) -> None:
        self.state["semantic"] = "building"
        self.engine.learned_fusion = self._load_learned("fusion", FUSION_MODEL_NAME, LearnedFusion.load)  # None: weights alone
        self.engine.use_encoder(*self.encoder_factory(self.settings))
        with cache_lock(self.engine.cache_dir), single_threaded():
            semantic = self.engine.semantic  # loaded from the cache, or built and cached
        self._semantic = semantic
        self.state["semantic"] = "ready"
        self._report_sizes()
        self._jobs.put(self._warm_query_vectors)

    def _load_learned(self, key: str, name: str, load):
        """The model under ``<home>/artifacts/<name>`` read by ``load``, or None; ``state[key]`` says which.
        A file that cannot be read is reported and left out: search works without it."""
        folder = model_path(self.settings, name)
        if folder is None:
            return None
        try:
            model = load(folder)
        except Exception as e:  # whatever is wrong with the file, search keeps working
            log.exception("%s not loaded", key)
            self.state[key] = f"failed: {type(e).__name__}: {e}"
            return None
        self.state[key] = f"learned ({folder})"
        return model

    def _warm_query_vectors(self) -> None:
        """Encode the shop's past queries ahead of time, most frequent last (= most recently used):
        most searches repeat one, and a batch costs a fraction of one-at-a-time encoding."""
        counts = Counter(normalise(q) for q in self._past_queries)
        queries = [q for q, _ in counts.most_common(QUERY_VECTOR_CACHE // 2) if q][::-1]
        self.state["past_queries"] = "encoding"
        for start in range(0, len(queries), 256):
            batch = queries[start:start + 256]
            with single_threaded():
                vectors = self._semantic.encoder.encode(batch, batch_size=64)
            for query, vector in zip(batch, vectors):
                self.query_vectors.put(query, vector[None, :])
        self.state["past_queries"] = f"{len(queries)} encoded"

    def _build_photos(self) -> None:
        from shelfwise.multimodal.model import MultimodalModel
        from shelfwise.multimodal.search import MultimodalSearch

        path = photo_model_path(self.settings)
        if path is None:
            self.state["photos"] = "no model"
            return
        self.state["photos"] = "building"
        cards = list(self.cards.values())
        # Only photos on this machine: the serving process does not download images.
        frame = pd.DataFrame({"item_id": [c.id for c in cards], "title": [c.title for c in cards],
                              "image": [c.image if c.image and Path(c.image).is_file() else "" for c in cards]})
        with single_threaded():
            # The alignment was trained on the torch encoder's vectors; the int8 ONNX ones stay
            # within cosine 0.98 of them (tests/test_encoders_onnx.py).
            photos = MultimodalSearch(MultimodalModel.load(path), text_encoder=self.encoder_factory(self.settings)[0]).fit(frame)
        self._photos = photos
        self.state["photos"] = "ready"

    def upsert(self, item_ids: list[str]) -> None:
        """Items just stored (POST /admin/ingest): searchable by keyword at once; their vectors and
        the suggestions follow from the background worker."""
        frame = self._catalogue_frame(list(dict.fromkeys(map(str, item_ids))))
        if frame.empty:
            return
        cards = item_cards(frame, self._popularity, self.keyword.analyze)
        with self._lock:
            self.keyword.add(frame)
            self.engine.update_texts(frame)
            self._set_cards({**self.cards, **cards})
            self._clear_caches()
        self._jobs.put(lambda: self._update_vectors(frame))
        self._jobs.put(self._fit_suggestions)
        self._report_sizes()

    def _update_vectors(self, frame: pd.DataFrame) -> None:
        if self._semantic is None:
            return
        vectors = self._semantic.encoder.encode(item_texts(frame))
        with self._lock:
            self._semantic.index.add(frame["item_id"].astype(str).tolist(), vectors)
            self._clear_caches()

    def _clear_caches(self) -> None:
        """Forget answers and candidates (the catalogue changed); query vectors stay valid."""
        self.answers = LRU(ANSWER_CACHE)  # whole pages, for shoppers without history
        self.candidates = LRU(ANSWER_CACHE)  # ranked candidates, re-ranked per shopper

    def _report_sizes(self) -> None:
        if self.metrics is not None:
            self.metrics.index_size.labels("search_items").set(len(self.keyword))
            self.metrics.index_size.labels("search_vectors").set(len(self._semantic.index) if self._semantic else 0)

    def status(self) -> dict:
        return {"items": len(self.keyword), "keyword": "ready", **self.state}

    # ---- answering ------------------------------------------------------------------------

    @property
    def semantic_ready(self) -> bool:
        return self._semantic is not None

    def suggest(self, prefix: str, k: int = 10) -> list[str]:
        return self.suggester.suggest(prefix, top=k)

    def filters(self, request: SearchRequest) -> Filters | None:
        category = None
        if request.category:
            prefix = request.category.strip()
            below = prefix + " > "
            category = sorted(c for c in self.categories if c == prefix or c.startswith(below)) or [prefix]
        if category is None and request.brand is None and request.price_min is None and request.price_max is None \
                and request.in_stock is None:
            return None
        return Filters(category=category, brand=request.brand, min_price=request.price_min, max_price=request.price_max,
                       in_stock=request.in_stock)

    def affinity(self, history: tuple[str, ...]) -> Affinity | None:
        categories: Counter = Counter()
        brands: Counter = Counter()
        for weight, item_id in enumerate(history, start=1):  # the newest counts most
            card = self.cards.get(item_id)
            if card is not None:
                categories[card.category] += weight
                brands[card.brand] += weight
        total = sum(categories.values())
        if not total:
            return None
        return Affinity({k: v / total for k, v in categories.items() if k}, {k: v / total for k, v in brands.items() if k})

    def search(self, request: SearchRequest) -> SearchOutcome:
        """One page of results for a text query, corrected when the spelling found (almost) nothing.
        Answers to shoppers without history are cached until the catalogue changes: shops see the
        same queries again and again, and a cached answer skips the encoder and the indexes."""
        mode = request.mode if request.mode == "keyword" or self.semantic_ready else "keyword"
        if request.history:
            return self._search(request, mode)
        key = (request, mode)  # the mode that answers: the keyword stand-in is dropped once vectors are ready
        outcome = self.answers.get(key)
        if outcome is None:
            outcome = self._search(request, mode)
            self.answers.put(key, outcome)
        return outcome

    def _search(self, request: SearchRequest, mode: str) -> SearchOutcome:
        # The candidates do not depend on who asks (the re-ranking does): cached for everyone.
        personal = bool(request.history) and request.sort == "relevance"
        key = (replace(request, history=()), mode, personal)
        retrieved = self.candidates.get(key)
        if retrieved is None:
            retrieved = self._retrieve_spelled(request, mode, personal)
            self.candidates.put(key, retrieved)
        found, corrected = retrieved
        return self._outcome(request, request.q, found, mode, corrected)

    def _retrieve_spelled(self, request: SearchRequest, mode: str, personal: bool) -> tuple[_Retrieved, str | None]:
        # A word the shop never uses is searched as its correction, and the answer says so: on Home
        # Depot's real queries this beat searching the typo (docs/search.md, "Spelling and units").
        fixed = self.keyword.spelling.correct(request.q)
        corrected = fixed if fixed and fixed != normalise(request.q) else None
        return self._retrieve(corrected or request.q, mode, self.filters(request), request, personal), corrected

    def _retrieve(self, text: str, mode: str, filters: Filters | None, request: SearchRequest, personal: bool) -> _Retrieved:
        depth = max(CANDIDATES, request.offset + request.per_page)
        with self._lock:
            if mode == "keyword":
                if personal:  # re-rank the top candidates, then page
                    page = self.keyword.search(text, top=depth, filters=filters, facets=FACETS, facet_size=FACET_SIZE)
                    return _Retrieved(page.hits, page.total, page.facets, words=self._query_words(text))
                page = self.keyword.search(text, top=request.per_page, offset=request.offset, filters=filters, sort=request.sort,
                                           facets=FACETS, facet_size=FACET_SIZE)
                return _Retrieved(page.hits, page.total, page.facets, paged=True, words=self._query_words(text))
            keyword_hits = self.keyword.search(text, top=depth, filters=filters).hits if mode == "hybrid" else []
            vector = self._query_vector(text)
            semantic_hits = [Hit(i, s) for i, s in self._semantic.index.search(vector, top=depth)[0]]
            if filters is not None:
                allowed = self.keyword.matching([h.item_id for h in semantic_hits], filters)
                semantic_hits = [h for h in semantic_hits if h.item_id in allowed]
        keyword_ids = {h.item_id for h in keyword_hits}
        semantic_ids = {h.item_id for h in semantic_hits}
        hits = self.engine.hybrid.fuse(keyword_hits, semantic_hits, text, vector) if mode == "hybrid" else semantic_hits
        retrievers = {h.item_id: tuple(name for name, ids in (("keyword", keyword_ids), ("semantic", semantic_ids)) if h.item_id in ids)
                      for h in hits}
        return _Retrieved(hits, len(hits), retrievers=retrievers, words=self._query_words(text))

    def _query_words(self, text: str) -> list[tuple[str, list[list[str]]]]:
        """Each query word with the index tokens it matches through: its own, or its correction's
        (the keyword index forgives one typo, so "cordles" finds "cordless")."""
        return [(w, [tokens for form in {w, self.keyword.spelling.correct_word(w)} if (tokens := self.keyword.analyze(form))])
                for w in dict.fromkeys(normalise(text).split())]

    def _query_vector(self, text: str) -> np.ndarray:
        key = normalise(text)
        vector = self.query_vectors.get(key)
        if vector is None:
            with single_threaded():
                vector = self._semantic.encoder.encode([key or text])
            self.query_vectors.put(key, vector)
        return vector

    def _outcome(self, request: SearchRequest, query: str, found: _Retrieved, mode: str, corrected: str | None) -> SearchOutcome:
        """The page of ``found`` to answer: re-ranked for the shopper, sorted, explained."""
        hits = [h for h in found.hits if h.item_id in self.cards]
        facets = found.facets if found.facets is not None else self._count_facets(hits)
        affinity = self.affinity(request.history) if request.sort == "relevance" else None
        boosts = {}
        if affinity is not None:
            boosts = {h.item_id: affinity.boost(self.cards[h.item_id]) for h in hits}
            hits = sorted((Hit(h.item_id, h.score * boosts[h.item_id]) for h in hits), key=lambda h: -h.score)
        elif not found.paged and request.sort != "relevance":
            hits = self._sorted(hits, request.sort)
        if not found.paged:
            hits = hits[request.offset: request.offset + request.per_page]
        default_retrievers = ("photo",) if mode == "image" else ("keyword",)
        results = []
        for hit in hits:
            card = self.cards[hit.item_id]
            matched = [w for w, forms in found.words if any(all(t in card.terms for t in tokens) for tokens in forms)]
            retrievers = found.retrievers.get(hit.item_id, ()) if found.retrievers is not None else default_retrievers
            results.append(Found(card, round(float(hit.score), 6) if np.isfinite(hit.score) else 0.0, matched, retrievers,
                                 round(boosts.get(hit.item_id, 1.0), 4)))
        return SearchOutcome(query, corrected, results, facets, found.total, request.page, request.per_page, mode)

    def _sorted(self, hits: list[Hit], sort: str) -> list[Hit]:
        cards = self.cards
        if sort == "popularity":
            return sorted(hits, key=lambda h: -cards[h.item_id].popularity)
        priced = [h for h in hits if cards[h.item_id].price is not None]
        unpriced = [h for h in hits if cards[h.item_id].price is None]  # last, whatever the direction
        return sorted(priced, key=lambda h: cards[h.item_id].price, reverse=sort == "price_desc") + unpriced

    def _count_facets(self, hits: list[Hit]) -> dict[str, dict[str, int]]:
        cards = [self.cards[h.item_id] for h in hits]
        counts = {
            "category": Counter(c.category for c in cards if c.category),
            "brand": Counter(c.brand for c in cards if c.brand),
            "price": Counter(price_band(c.price) for c in cards if c.price is not None),
        }
        return {name: dict(counter.most_common(FACET_SIZE)) for name, counter in counts.items()}

    # ---- photos and voice -----------------------------------------------------------------

    def search_photo(self, photo: bytes, request: SearchRequest, name: str = "") -> SearchOutcome:
        """Items that look like the photo (the multimodal model's aligned space). Raises
        ``ImageReadError`` for a photo that cannot be read (checked first: a client's mistake is
        reported whatever the server's state), :class:`SearchUnavailable` without a model."""
        from shelfwise.encoders.image import read_image

        read_image(photo)
        photos = self._photos
        if photos is None:
            if self.state["photos"] == "no model" and photo_model_path(self.settings) is not None:
                self.state["photos"] = "waiting"  # trained since start-up: index it now
                self._jobs.put(self._build_photos)
            if self.state["photos"] == "no model":
                raise SearchUnavailable(how_to_train_photos(self.settings))
            raise SearchUnavailable(f"the photo index is not ready ({self.state['photos']}); retry in a minute")
        depth = max(CANDIDATES, request.offset + request.per_page)
        hits = photos.search_images([photo], top=depth)[0].hits
        filters = self.filters(request)
        if filters is not None:
            with self._lock:
                allowed = self.keyword.matching([h.item_id for h in hits], filters)
            hits = [h for h in hits if h.item_id in allowed]
        return self._outcome(request, name, _Retrieved(hits, len(hits)), "image", None)

    def recognizer(self):
        """(Whisper tiny.en, catalogue biasing), loaded at the first voice query: prompted with and
        biased towards the catalogue's words."""
        with self._recognizer_lock:
            if self._recognizer is None:
                from shelfwise.encoders.audio import SpeechConfig, SpeechRecognizer, vocabulary_prompt
                from shelfwise.multimodal.voice import CatalogueBiasing

                cards = list(self.cards.values())
                titles, categories = [c.title for c in cards], [c.category for c in cards if c.category]
                prompt = vocabulary_prompt(titles, categories)
                self._recognizer = SpeechRecognizer(SpeechConfig(prompt=prompt)), CatalogueBiasing().fit(titles + categories)
            return self._recognizer

    def search_voice(self, audio: bytes, request: SearchRequest) -> tuple[str, SearchOutcome]:
        """(transcript, results) for a spoken query; ``AudioReadError`` for audio that cannot be decoded."""
        from shelfwise.encoders.audio import query_text, read_audio
        from shelfwise.multimodal.voice import VoiceSearch

        samples = read_audio(audio)  # decoded before the model loads: bad audio is a quick 400
        outcomes: list[SearchOutcome] = []

        def run(queries, top):  # VoiceSearch's search function: the full text search, kept for the answer
            outcomes.append(self.search(replace(request, q=queries[0])))
            return [SearchPage(hits=[], total=outcomes[-1].total)]

        recognizer, biasing = self.recognizer()
        heard = VoiceSearch(run, recognizer, self.keyword.spelling, biasing).search(samples, top=request.per_page)
        spoken = query_text(heard.transcript.text)
        if not outcomes:  # nothing was said
            return heard.transcript.text, SearchOutcome(spoken, None, [], {name: {} for name in FACETS}, 0, request.page,
                                                        request.per_page, request.mode)
        outcome = outcomes[0]  # may be a cached answer: copied, never changed
        return heard.transcript.text, replace(outcome, query=spoken,
                                              corrected=outcome.corrected or (heard.query if heard.query != spoken else None))


@contextmanager
def cache_lock(folder: Path | None):
    """An exclusive file lock on the index cache while building: with several API workers, the
    first builds and caches the vectors, the others wait and then load them."""
    if folder is None:
        yield
        return
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock
