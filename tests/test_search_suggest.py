"""Autocomplete from titles and past queries; spelling correction."""

from __future__ import annotations

from shelfwise.search.suggest import QuerySuggester, SpellingCorrector, edit_distance, normalise

TITLES = ["Cordless Drill Kit 20V", "Cordless Drill Driver", "Cordless Impact Wrench", "Garden Hose 50 ft", "Hammer Drill"]
QUERIES = ["cordless drill", "cordless drill", "garden hose reel", "hammer"]


def test_normalise_and_distance():
    assert normalise("  Cordless  DRILL, 1/2-in. ") == "cordless drill 1/2-in"
    assert edit_distance("drill", "drill") == 0
    assert edit_distance("dirll", "drill") == 1  # transposition is one edit
    assert edit_distance("hamer", "hammer") == 1
    assert edit_distance("kitten", "sitting") == 3


def test_spelling_correction():
    corrector = SpellingCorrector().fit(TITLES + QUERIES)
    assert corrector.correct("cordles dril") == "cordless drill"
    assert corrector.correct("hamer drlil") == "hammer drill"
    assert corrector.correct("garden hose") == "garden hose"
    assert corrector.correct("20v xyzzyq") == "20v xyzzyq"  # codes and hopeless words are left alone


def test_corrections_are_remembered_until_the_vocabulary_changes(monkeypatch):
    corrector = SpellingCorrector().fit(TITLES)
    computed = []
    original = corrector._correct_unknown
    monkeypatch.setattr(corrector, "_correct_unknown", lambda word: computed.append(word) or original(word))
    assert corrector.correct("cordles hamer") == corrector.correct("cordles hamer") == "cordless hammer"
    assert computed == ["cordles", "hamer"]  # the second query was answered from memory
    corrector.add(["Cordles Brand Saw"])  # now a word the shop uses: it must not be "corrected" any more
    assert corrector.correct("cordles hamer") == "cordles hammer"
    assert computed == ["cordles", "hamer", "hamer"]


def test_suggestions_rank_past_queries_first():
    suggester = QuerySuggester(min_title_count=1).fit(TITLES, QUERIES)
    out = suggester.suggest("cord", top=3)
    assert out[0] == "cordless drill" and len(out) == 3 and all(s.startswith("cord") for s in out)
    assert suggester.suggest("garden h")[0] == "garden hose reel"
    assert suggester.suggest("cordless ", top=10) == ["cordless drill", "cordless drill driver", "cordless drill kit", "cordless impact", "cordless impact wrench"]
    assert suggester.suggest("") == []


def test_suggestions_fall_back_to_spelling_correction():
    suggester = QuerySuggester(min_title_count=1).fit(TITLES, QUERIES)
    assert suggester.suggest("cordles dr")[0] == "cordless drill"
    assert suggester.suggest("hamer")[0] == "hammer"
    assert suggester.suggest("zzzz") == []


def test_words_run_together_are_split_where_both_halves_are_common():
    corrector = SpellingCorrector().fit(["Deck Board Screws", "Composite Deck Board", "Deck Board Gray", "Garden Hose"])
    assert corrector.correct("deckboard screws") == "deck board screws"
    assert corrector.correct("gardenhose") == "gardenhose"  # "garden" and "hose" appear once: too rare to trust


def test_vocabulary_grows_and_round_trips_through_counts():
    corrector = SpellingCorrector().fit(TITLES)
    assert corrector.correct_word("trowle") == "trowle"
    corrector.add(["Margin Trowel"])
    assert corrector.correct_word("trowle") == "trowel"
    copy = SpellingCorrector().add_counts(dict(corrector.counts))
    assert copy.correct("cordles trowle") == "cordless trowel"
