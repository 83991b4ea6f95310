"""Voice queries: speech -> transcript (Whisper tiny.en) -> any search function, with the
transcript returned beside the results so the shopper sees what was heard.

A tiny speech model mishears shop words it rarely met ("men analog watch" -> "men and long
watch", "silk saree" -> "silk fairy"). :class:`CatalogueBiasing` corrects that towards the
shop's own vocabulary: it proposes queries made of catalogue words that *sound like* what Whisper
heard (plus Whisper's own runners-up), lets Whisper score how well each one fits the audio, and
adds how likely each one is in this shop (a word bigram model of the catalogue). The best sum wins.
"""

from __future__ import annotations

import heapq
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

from shelfwise.encoders.audio import AudioSource, Heard, SpeechRecognizer, Transcript, query_text
from shelfwise.search.keyword import SearchPage
from shelfwise.search.suggest import edit_distance

# (queries, top) -> one page per query: e.g. ``lambda q, top: engine.search_many(q, mode="hybrid", top=top)``.
SearchFunction = Callable[[Sequence[str], int], list[SearchPage]]
TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # words as query_text keeps them ("t-shirt")


class Corrector(Protocol):
    """E.g. :class:`shelfwise.search.suggest.SpellingCorrector` fitted on the catalogue's titles."""

    def correct(self, query: str) -> str: ...


class CatalogueLanguageModel:
    """How likely a query is in this shop: a word bigram model of the titles and categories,
    interpolated with the unigram (absolute discounting), so word order matters a little and word
    choice a lot. Words the shop never uses share the mass of one unseen word."""

    def __init__(self, discount: float = 0.75):
        self.discount = discount
        self.unigrams: Counter[str] = Counter()
        self.bigrams: Counter[tuple[str, str]] = Counter()
        self.followers: Counter[str] = Counter()  # how many distinct words follow each word
        self.pairs_from: Counter[str] = Counter()  # how many word pairs start with each word
        self.total = 0

    def fit(self, texts: Iterable[str]) -> "CatalogueLanguageModel":
        for text in texts:
            words = TOKEN.findall(str(text).lower())
            self.unigrams.update(words)
            self.bigrams.update(zip(words, words[1:]))
        self.followers = Counter(first for first, _ in self.bigrams)
        self.pairs_from = Counter()
        for (first, _), count in self.bigrams.items():
            self.pairs_from[first] += count
        self.total = sum(self.unigrams.values())
        return self

    def word_log_prob(self, word: str, previous: str | None = None) -> float:
        unigram = (self.unigrams[word] + 1) / (self.total + len(self.unigrams) + 1)  # add-one, one slot for unseen words
        seen = self.pairs_from[previous] if previous else 0
        if not seen:  # the start of a query, or a word that ends every title it is in
            return math.log(unigram)
        pair = max(self.bigrams[(previous, word)] - self.discount, 0) / seen
        return math.log(pair + self.discount * self.followers[previous] / seen * unigram)

    def words_log_prob(self, words: Sequence[str], previous: str | None = None) -> float:
        return sum(self.word_log_prob(w, p) for p, w in zip([previous, *words[:-1]], words))

    def log_prob(self, query: str) -> float:
        return self.words_log_prob(TOKEN.findall(query.lower()))


_SOUND_RULES = [  # spelling -> rough sound, in this order (a metaphone-like key, English spelling)
    (r"[^a-z]", ""), (r"x", "ks"), (r"nd(?![aeiouy])", "n"), (r"ph", "f"), (r"(sh|tch|ch)", "x"), (r"th", "0"), (r"ck|q", "k"),
    (r"gh", ""), (r"wh", "w"), (r"c(?=[eiy])", "s"), (r"c", "k"),
    (r"b", "p"), (r"d", "t"), (r"g", "k"), (r"v", "f"), (r"z", "s"), (r"j", "x"),  # voicing is what a tiny model confuses
    (r"(?<=.)[aeiouyhw]", ""), (r"^[aeiou]", "a"), (r"(.)\1+", r"\1"),
]


def sound_key(text: str) -> str:
    """Consonant skeleton of how ``text`` sounds: "saree" and "fairy" -> "sr" / "fr", "and long"
    -> "anlnk" near "analog" -> "anlk". Whisper mishears sounds, so candidates are found by sound."""
    key = text.lower()
    for pattern, sound in _SOUND_RULES:
        key = re.sub(pattern, sound, key)
    return key


class SoundAlikeWords:
    """Catalogue words whose :func:`sound_key` is within a few edits of a heard span's key; a
    symmetric-delete index (as in the spelling corrector) avoids scanning the vocabulary."""

    def __init__(self, counts: Counter[str], max_distance: int = 2, min_length: int = 3):
        self.counts = counts
        self.max_distance = max_distance
        self._keys = {w: sound_key(w) for w in counts if len(w) >= min_length and not w.isdigit()}
        self._by_delete: dict[str, set[str]] = {}
        for word, key in self._keys.items():
            for variant in _deletes(key, max_distance):
                self._by_delete.setdefault(variant, set()).add(word)

    def near(self, heard: str, top: int) -> list[tuple[str, int]]:
        """Up to ``top`` (word, key distance), nearest first, then the shop's most frequent."""
        key = sound_key(heard)
        if not key:
            return []
        allowed = min(self.max_distance, max(1, len(key) // 2))  # a two-sound key may change one sound
        found = {w for variant in _deletes(key, allowed) for w in self._by_delete.get(variant, ())}
        # A word with fewer sounds than were heard would silently drop part of the query.
        scored = ((w, edit_distance(key, self._keys[w])) for w in found if len(self._keys[w]) >= len(key) - 1)
        return heapq.nsmallest(top, ((w, d) for w, d in scored if d <= allowed), key=lambda wd: (wd[1], -self.counts[wd[0]]))


def _deletes(key: str, depth: int) -> set[str]:
    found, frontier = {key}, {key}
    for _ in range(depth):
        frontier = {k[:i] + k[i + 1 :] for k in frontier for i in range(len(k))}
        found |= frontier
    return found


@dataclass
class BiasingConfig:
    # The two weights were chosen on 40 spoken queries made from the attributes of fashion products
    # outside the benchmark's catalogue (gender, colour, article type), not on the benchmark queries.
    lm_weight: float = 0.5  # nats of catalogue log-probability per nat of Whisper log-probability
    # Both models charge for every word, so alone they would prefer dropping words ("trunks" for
    # "white running shoes"): each word earns this bonus back (the usual insertion reward of LM fusion).
    word_bonus: float = 2.0
    edit_penalty: float = 2.0  # nats per sound edit when shortlisting replacements (before Whisper scores them)
    max_span: int = 3  # heard words one catalogue word may replace ("we've been" -> "women")
    words_per_span: int = 4  # sound-alike catalogue words tried per heard span
    proposals: int = 8  # catalogue-word queries Whisper scores, beside its own n-best
    hypotheses: int = 3  # of Whisper's n-best (distinct after normalising) kept as candidates


class CatalogueBiasing:
    """Chooses the query among Whisper's n-best and sound-alike catalogue phrasings:
    ``argmax log P_whisper(text | audio) + lm_weight * log P_catalogue(text) + word_bonus * words``."""

    def __init__(self, config: BiasingConfig | None = None):
        self.config = config or BiasingConfig()
        self.language_model = CatalogueLanguageModel()
        self.sound_alikes: SoundAlikeWords | None = None

    def fit(self, texts: Iterable[str]) -> "CatalogueBiasing":
        self.language_model.fit(texts)
        self.sound_alikes = SoundAlikeWords(self.language_model.unigrams)
        return self

    def candidates(self, heard: Heard) -> list[str]:
        """Whisper's distinct n-best queries, then the best catalogue phrasings of any of them."""
        own = list(dict.fromkeys(q for q in (query_text(t) for t in heard.texts) if q))[: self.config.hypotheses]
        proposed = heapq.nlargest(self.config.proposals, {p for q in own for p in self.proposals(q.split())})
        return list(dict.fromkeys(own + [text for _, text in proposed]))

    def proposals(self, words: list[str]) -> list[tuple[float, str]]:
        """Best rewrites of the heard words as (catalogue fit minus sound edits, text), by a beam
        over word positions: each span of up to ``max_span`` heard words is kept or replaced by
        one sound-alike catalogue word."""
        config, lm = self.config, self.language_model
        beams: list[list[tuple[float, tuple[str, ...]]]] = [[(0.0, ())]] + [[] for _ in words]
        for end in range(1, len(words) + 1):
            for start in range(max(0, end - config.max_span), end):
                options = self._replacements(words[start:end])
                for score, so_far in beams[start]:
                    previous = (TOKEN.findall(so_far[-1]) or [None])[-1] if so_far else None
                    for word, distance in options:
                        gain = lm.words_log_prob(TOKEN.findall(word), previous)
                        beams[end].append((score + gain - config.edit_penalty * distance, so_far + (word,)))
            beams[end] = heapq.nlargest(config.proposals, beams[end])
        return [(score, " ".join(words)) for score, words in beams[-1]]

    def _replacements(self, span: list[str]) -> list[tuple[str, int]]:
        kept = [(span[0], 0)] if len(span) == 1 else []
        return kept + self.sound_alikes.near("".join(span), self.config.words_per_span)

    def choose(self, heard: Heard, recognizer: SpeechRecognizer) -> str:
        candidates = self.candidates(heard)
        if len(candidates) <= 1 or not self.language_model.total:  # nothing to choose, or no words to choose by (photos only)
            return candidates[0] if candidates else ""
        acoustic = recognizer.score(heard, candidates)
        return candidates[max(range(len(candidates)), key=lambda i: self.total_score(candidates[i], acoustic[i]))]

    def total_score(self, candidate: str, acoustic: float) -> float:
        words = TOKEN.findall(candidate.lower())
        return acoustic + self.config.lm_weight * self.language_model.words_log_prob(words) + self.config.word_bonus * len(words)


@dataclass
class VoiceResult:
    transcript: Transcript  # what Whisper heard first; decode_seconds include the biasing
    query: str  # the query searched: normalised, biased to the catalogue and/or corrected if set
    page: SearchPage


class VoiceSearch:
    """``search(audio)`` -> transcript + results. ``biasing`` (fitted on the catalogue) picks the
    query the shop most likely meant among what Whisper could have heard; a ``corrector`` maps
    words the shop never uses to the nearest catalogue word ("leggins" -> "leggings")."""

    def __init__(self, search: SearchFunction, recognizer: SpeechRecognizer | None = None, corrector: Corrector | None = None,
                 biasing: CatalogueBiasing | None = None):
        self.search_function = search
        self.recognizer = recognizer or SpeechRecognizer()
        self.corrector = corrector
        self.biasing = biasing

    def search(self, audio: AudioSource, top: int = 10) -> VoiceResult:
        started = time.perf_counter()
        heard = self.recognizer.hear(audio)
        query = self.biasing.choose(heard, self.recognizer) if self.biasing else query_text(heard.texts[0])
        if self.corrector is not None and query:
            query = self.corrector.correct(query)
        transcript = Transcript(heard.texts[0], heard.audio_seconds, time.perf_counter() - started)
        page = self.search_function([query], top)[0] if query else SearchPage(hits=[], total=0)
        return VoiceResult(transcript, query, page)
