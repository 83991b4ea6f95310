"""Query suggestions (autocomplete) and spelling correction from the catalogue and past queries.

Suggestions are phrases that start with what the user typed: past queries (weighted by how often
they were asked) and runs of up to three words from product titles (weighted by how many titles
hold them).
Spelling correction replaces each word the shop has never seen by the most frequent known word
within two edits, found with a symmetric-delete index (SymSpell's idea): every word is filed under
itself with one character deleted, so a misspelling meets its correction without scanning the
vocabulary. A word with no known word near it may be two words run together ("deckboard"): it
is split where both halves are common catalogue words.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections import Counter
from typing import Iterable, Mapping

# A suggestion that starts or ends in one of these is a fragment ("toilet in", "with bracket").
DANGLING = frozenset({"a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "per", "the", "to", "with", "x"})
WORD = re.compile(r"[a-z0-9]+(?:[./-][a-z0-9]+)*")


def normalise(text: str) -> str:
    return " ".join(WORD.findall(str(text).lower()))


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment): a swap of neighbours is one edit."""
    previous2, previous = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


MEMO_SIZE = 100_000  # corrections remembered (a few MB)


class SpellingCorrector:
    """``fit(texts)`` learns the vocabulary (``add(texts)`` grows it); ``correct(query)`` fixes unknown words."""

    def __init__(self, max_distance: int = 2, min_length: int = 4, min_count: int = 1, min_split_count: int = 3):
        self.max_distance = max_distance
        self.min_length = min_length  # short words and codes are too ambiguous to correct
        self.min_count = min_count
        self.min_split_count = min_split_count  # both halves of a split word must be this common
        self.counts: Counter[str] = Counter()
        self._by_delete: dict[str, list[str]] = {}
        # Unknown word -> its correction. A hybrid search corrects the same query for the keyword
        # query, the semantic query and the learned fusion's features; an unknown word costs ~0.3 ms
        # over Home Depot's 26k title words, a remembered one ~2 us. Emptied whenever the vocabulary
        # changes, and when full.
        self._memo: dict[str, str] = {}

    def fit(self, texts: Iterable[str]) -> "SpellingCorrector":
        self.counts, self._by_delete, self._memo = Counter(), {}, {}
        return self.add(texts)

    def add(self, texts: Iterable[str]) -> "SpellingCorrector":
        """Learn the words of more texts (new products); words are never forgotten."""
        return self.add_counts(Counter(w for text in texts for w in WORD.findall(str(text).lower())))

    def add_counts(self, counts: Mapping[str, int]) -> "SpellingCorrector":
        """Learn words with their counts (e.g. :attr:`counts` saved by another corrector)."""
        if counts:
            self._memo = {}  # a new word or a new count can change a correction
        for word, count in counts.items():
            before = self.counts[word]
            self.counts[word] = before + count
            if before < self.min_count <= before + count and len(word) >= self.min_length - 1:
                for key in _deletes(word) | {word}:
                    self._by_delete.setdefault(key, []).append(word)
        return self

    def correct_word(self, word: str) -> str:
        if word in self.counts or len(word) < self.min_length or any(c.isdigit() for c in word):
            return word
        corrected = self._memo.get(word)
        if corrected is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo = {}
            corrected = self._memo[word] = self._correct_unknown(word)
        return corrected

    def _correct_unknown(self, word: str) -> str:
        keys = {word} | _deletes(word)
        if self.max_distance >= 2:
            keys |= {d2 for d1 in _deletes(word) for d2 in _deletes(d1)}
        candidates = {c for key in keys for c in self._by_delete.get(key, ())}
        best = None
        for candidate in candidates:
            distance = edit_distance(word, candidate)
            if distance <= self.max_distance:
                rank = (distance, -self.counts[candidate], candidate)
                best = rank if best is None or rank < best else best
        return best[2] if best else self._split(word)

    def _split(self, word: str) -> str:
        """``word`` as two common words run together, the split whose rarer half is commonest; else ``word``."""
        best = None
        for cut in range(3, len(word) - 2):
            left, right = word[:cut], word[cut:]
            support = min(self.counts.get(left, 0), self.counts.get(right, 0))
            if support >= self.min_split_count and (best is None or support > best[0]):
                best = (support, f"{left} {right}")
        return best[1] if best else word

    def correct(self, query: str) -> str:
        return " ".join(self.correct_word(w) for w in normalise(query).split())


class QuerySuggester:
    """``fit(titles, past_queries)``; ``suggest(prefix)`` -> up to ``top`` completions, best first."""

    def __init__(
        self,
        max_title_words: int = 3,
        min_title_count: int = 2,
        query_weight: float = 3.0,
        corrector: SpellingCorrector | None = None,
    ):
        self.max_title_words = max_title_words
        self.min_title_count = min_title_count  # a phrase in one title only is noise, not a query
        self.query_weight = query_weight  # a phrase people typed is a better suggestion than a title fragment
        self.corrector = corrector
        self._phrases: list[str] = []
        self._weights: list[float] = []

    def fit(self, titles: Iterable[str], past_queries: Iterable[str] = ()) -> "QuerySuggester":
        past_queries = list(past_queries)
        titles = [normalise(t) for t in titles]
        weights: Counter[str] = Counter()
        for title in titles:
            words = title.split()
            # Every run of up to max_title_words words, counted once per title: titles often start
            # with a brand, while people type the product ("cordless drill") from the middle.
            weights.update({
                " ".join(words[start : start + n])
                for n in range(1, self.max_title_words + 1)
                for start in range(len(words) - n + 1)
                if words[start] not in DANGLING and words[start + n - 1] not in DANGLING
            })
        weights = Counter({p: w for p, w in weights.items() if w >= self.min_title_count or " " not in p})
        for query in past_queries:
            phrase = normalise(query)
            if phrase:
                weights[phrase] += self.query_weight
        self._phrases = sorted(weights)
        self._weights = [weights[p] for p in self._phrases]
        if self.corrector is None:
            self.corrector = SpellingCorrector().fit(titles + [normalise(q) for q in past_queries])
        return self

    def _complete(self, prefix: str, top: int) -> list[str]:
        low = bisect.bisect_left(self._phrases, prefix)
        high = bisect.bisect_left(self._phrases, prefix + "\uffff")
        best = heapq.nsmallest(top, range(low, high), key=lambda i: (-self._weights[i], self._phrases[i]))
        return [self._phrases[i] for i in best]

    def suggest(self, prefix: str, top: int = 10) -> list[str]:
        """Completions of ``prefix``; when nothing completes it, completions of its spelling-corrected form."""
        typed = normalise(prefix)
        if not typed:
            return []
        # A trailing space means the last word is finished: complete the next word only.
        if str(prefix).endswith(" "):
            typed += " "
        found = self._complete(typed, top)
        if found or self.corrector is None:
            return found
        words = typed.split()
        fixed = [self.corrector.correct_word(w) for w in words]
        tail = " " if typed.endswith(" ") else ""
        # First trust the word being typed (it may just be incomplete), then correct it too.
        for attempt in (" ".join(fixed[:-1] + words[-1:]) + tail, " ".join(fixed) + tail):
            if attempt != typed:
                found = self._complete(attempt, top)
                if found:
                    return found
        return []
