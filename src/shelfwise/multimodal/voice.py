"""Voice queries: speech -> transcript (Whisper tiny.en) -> any search function, with the
transcript returned beside the results so the shopper sees what was heard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from shelfwise.encoders.audio import AudioSource, SpeechRecognizer, Transcript, query_text
from shelfwise.search.keyword import SearchPage

# (queries, top) -> one page per query: e.g. ``lambda q, top: engine.search_many(q, mode="hybrid", top=top)``.
SearchFunction = Callable[[Sequence[str], int], list[SearchPage]]


class Corrector(Protocol):
    """E.g. :class:`shelfwise.search.suggest.SpellingCorrector` fitted on the catalogue's titles."""

    def correct(self, query: str) -> str: ...


@dataclass
class VoiceResult:
    transcript: Transcript
    query: str  # the transcript as it was searched (normalised, and corrected if a corrector is set)
    page: SearchPage


class VoiceSearch:
    """``search(audio)`` -> transcript + results. A ``corrector`` maps words the shop never uses to
    the nearest catalogue word ("leggins" -> "leggings"): a misheard word then still finds products."""

    def __init__(self, search: SearchFunction, recognizer: SpeechRecognizer | None = None, corrector: Corrector | None = None):
        self.search_function = search
        self.recognizer = recognizer or SpeechRecognizer()
        self.corrector = corrector

    def search(self, audio: AudioSource, top: int = 10) -> VoiceResult:
        transcript = self.recognizer.transcribe(audio)
        query = query_text(transcript.text)
        if self.corrector is not None and query:
            query = self.corrector.correct(query)
        page = self.search_function([query], top)[0] if query else SearchPage(hits=[], total=0)
        return VoiceResult(transcript, query, page)
