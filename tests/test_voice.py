"""Voice queries: real Whisper tiny.en on speech made with espeak-ng (WAV, MP3 and OGG).

espeak-ng is a system package (Debian: ``apt-get install -y espeak-ng``); without it the speech
tests skip with that reason."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

import pytest

from shelfwise.encoders.audio import AudioReadError, SpeechConfig, SpeechRecognizer, query_text, read_audio, write_audio

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (Debian/Ubuntu: apt-get install -y espeak-ng)")
PRODUCTS = "product_id,title\n1,Black Leather Belt\n2,Blue Denim Jeans\n3,White Running Shoes\n4,Red Summer Dress\n"


def _speak(text: str, path) -> None:
    subprocess.run([ESPEAK, "-v", "en-us", "-s", "150", "-w", str(path), text], check=True, capture_output=True)


@pytest.fixture(scope="module")
def recognizer():
    return SpeechRecognizer(SpeechConfig())


def test_unreadable_audio_is_a_clear_error(tmp_path):
    with pytest.raises(AudioReadError, match="file not found"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioReadError, match=r"audio 3 \(1200 bytes\): cannot decode"):
        read_audio(b"not audio" * 133 + b"xxx", 3)
    with pytest.raises(ValueError, match="unsupported audio format"):
        write_audio([0.0] * 10, tmp_path / "clip.aiff")


def test_query_text_drops_punctuation_between_words():
    assert query_text(" Men, black leather belt. ") == "men black leather belt"
    assert query_text("Navy blue polo t-shirt, women's.") == "navy blue polo t-shirt women's"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (Debian/Ubuntu: apt-get install -y espeak-ng)")
    folder = tmp_path_factory.mktemp("speech")
    _speak("black leather belt", folder / "belt.wav")
    samples = read_audio(folder / "belt.wav")
    return {"wav": folder / "belt.wav", "mp3": write_audio(samples, folder / "belt.mp3"), "ogg": write_audio(samples, folder / "belt.ogg")}


@needs_espeak
@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg"])
def test_transcribes_each_format(recognizer, clips, fmt):
    transcript = recognizer.transcribe(clips[fmt])
    assert "belt" in transcript.text.lower()
    assert transcript.audio_seconds > 0.5 and transcript.real_time_factor > 0
    # From bytes too (an upload); MP3 framing may shift a few samples, so compare the words that matter.
    assert "belt" in recognizer.encode([clips[fmt].read_bytes()])[0].lower()


@needs_espeak
@pytest.mark.slow
def test_cli_voice_returns_the_transcript_with_the_results(clips, tmp_path):
    from click.testing import CliRunner

    from shelfwise.commands.multimodal import voice
    from shelfwise.config import Settings

    (tmp_path / "products.csv").write_text(PRODUCTS)
    (tmp_path / "bad.mp3").write_bytes(b"nope" * 50)
    args = [str(clips["mp3"]), str(tmp_path / "bad.mp3"), "--products", str(tmp_path / "products.csv"), "--top", "2", "--beam-size", "1"]
    result = CliRunner().invoke(voice, args, obj=Settings(home=tmp_path / "home", quiet=True))
    assert result.exit_code == 1 and "1 of 2 audio files could not be read" in result.output
    line = json.loads(result.output.splitlines()[0])
    assert "belt" in line["transcript"].lower() and line["file"] == str(clips["mp3"])
    assert line["results"][0]["product_id"] == "1" and line["results"][0]["title"] == "Black Leather Belt"
    assert "bad.mp3" in result.output


def test_vocabulary_prompt_lists_frequent_catalogue_words_most_frequent_last():
    from shelfwise.encoders.audio import vocabulary_prompt

    prompt = vocabulary_prompt(["Nike Men Black Shoes", "Puma Men Black Belt", "Men Blue Jeans"], ["Shoes", "Belts"], max_words=3)
    assert prompt.startswith("Shop search: ") and prompt.endswith("men.")
    assert prompt.split(": ")[1].rstrip(".").split(", ") == ["shoes", "black", "men"]
    assert vocabulary_prompt([]) == ""


@needs_espeak
def test_voice_search_returns_transcript_and_results(recognizer, clips):
    from shelfwise.search.keyword import Hit, SearchPage
    from shelfwise.search.suggest import SpellingCorrector
    from shelfwise.multimodal.voice import VoiceSearch

    titles = {"1": "black leather belt", "2": "blue denim jeans"}

    def search(queries, top):  # a tiny exact-word ranking stands in for the search engine here
        return [SearchPage(hits=sorted((Hit(i, float(len(set(q.split()) & set(t.split())))) for i, t in titles.items()), key=lambda h: -h.score)[:top], total=2) for q in queries]

    result = VoiceSearch(search, recognizer, SpellingCorrector().fit(titles.values())).search(clips["ogg"], top=1)
    assert "belt" in result.transcript.text.lower() and result.query == result.query.lower()
    assert result.page.item_ids == ["1"]


CATALOGUE = ["Titan Men Analog Watch", "Fastrack Men Black Analog Watch", "Mitera Women Silk Saree", "Satya Paul Silk Saree",
             "Puma Men Black Leather Belt", "Nike Women Black Leggings", "Saree", "Watches"]


def test_sound_key_files_misheard_words_near_the_catalogue_word():
    from shelfwise.multimodal.voice import SoundAlikeWords, sound_key

    assert sound_key("saree") == "sr" and sound_key("fairy") == "fr"
    assert sound_key("and long") == "anlnk" and sound_key("analog") == "anlk"
    words = SoundAlikeWords(Counter({"saree": 5, "analog": 3, "watch": 4, "silk": 2}))
    assert ("saree", 1) in words.near("fairy", 4) and [w for w, _ in words.near("andlong", 4)] == ["analog"]
    assert words.near("xyzzyq", 4) == []


def test_catalogue_language_model_prefers_the_shops_phrasing():
    from shelfwise.multimodal.voice import CatalogueLanguageModel

    lm = CatalogueLanguageModel().fit(CATALOGUE)
    assert lm.log_prob("men analog watch") > lm.log_prob("men and long watch")
    assert lm.log_prob("silk saree") > lm.log_prob("silk fairy")
    assert lm.log_prob("analog watch") > lm.log_prob("watch analog")  # word order counts a little


class _Scores:
    """A stand-in recogniser whose acoustic scores are given: tests the fusion, not Whisper."""

    def __init__(self, scores):
        self.scores = scores

    def score(self, heard, texts):
        return [self.scores.get(t, -30.0) for t in texts]


def _heard(*texts):
    from shelfwise.encoders.audio import Heard

    return Heard(list(texts), 1.0, 0.1, None, 100)


def test_biasing_proposes_catalogue_words_that_sound_like_what_was_heard():
    from shelfwise.multimodal.voice import CatalogueBiasing

    biasing = CatalogueBiasing().fit(CATALOGUE)
    candidates = biasing.candidates(_heard("Silk, fairy.", "Still, Harry."))
    assert candidates[:2] == ["silk fairy", "still harry"] and "silk saree" in candidates
    assert "men analog watch" in biasing.candidates(_heard("Men and long watch."))


def test_biasing_trades_acoustic_fit_against_catalogue_fit():
    from shelfwise.multimodal.voice import BiasingConfig, CatalogueBiasing

    heard = _heard("Silk, fairy.")
    # Whisper finds "silk fairy" a little likelier; the shop sells silk sarees, not fairies.
    close = _Scores({"silk fairy": -6.0, "silk saree": -7.5})
    assert CatalogueBiasing().fit(CATALOGUE).choose(heard, close) == "silk saree"
    # ... but a text that does not fit the audio at all is not chosen for being a catalogue phrase.
    assert CatalogueBiasing().fit(CATALOGUE).choose(heard, _Scores({"silk fairy": -6.0, "silk saree": -40.0})) == "silk fairy"
    # Without the language model the acoustic score decides.
    assert CatalogueBiasing(BiasingConfig(lm_weight=0.0)).fit(CATALOGUE).choose(heard, close) == "silk fairy"


def test_word_bonus_keeps_biasing_from_dropping_heard_words():
    from shelfwise.multimodal.voice import BiasingConfig, CatalogueBiasing

    heard = _heard("Men, black, leather, belt.")
    scores = _Scores({"men black leather belt": -3.0, "black belt": -12.0, "men black leather": -8.0})
    biasing = CatalogueBiasing().fit(CATALOGUE)
    biasing.candidates = lambda heard: list(scores.scores)  # a fixed shortlist: this tests the scoring only
    assert biasing.choose(heard, scores) == "men black leather belt"


@needs_espeak
def test_voice_search_biases_a_misheard_query_to_the_catalogue(recognizer, tmp_path):
    from shelfwise.multimodal.voice import CatalogueBiasing, VoiceSearch
    from shelfwise.search.keyword import SearchPage

    _speak("men analog watch", tmp_path / "watch.wav")
    searched = []

    def search(queries, top):
        searched.extend(queries)
        return [SearchPage(hits=[], total=0)]

    plain = VoiceSearch(search, recognizer).search(tmp_path / "watch.wav")
    biased = VoiceSearch(search, recognizer, biasing=CatalogueBiasing().fit(CATALOGUE)).search(tmp_path / "watch.wav")
    assert "analog" not in plain.query  # tiny.en hears "man, man, a lot more" ...
    assert biased.query.endswith("analog watch") and searched[-1] == biased.query  # ... the catalogue sets it right
    assert biased.transcript.text == plain.transcript.text and biased.transcript.decode_seconds > 0


def test_biasing_without_catalogue_words_keeps_whispers_best():
    from shelfwise.multimodal.voice import CatalogueBiasing

    heard = _heard("Men, black, leather, belt.", "Men, black, leather, belt, belt.")
    assert CatalogueBiasing().fit([]).choose(heard, _Scores({})) == "men black leather belt"
