"""Learned synonyms: what they learn from judged searches, how keyword search uses them, saving."""

from __future__ import annotations

import pandas as pd
import pytest

from shelfwise.search import KeywordIndex, LearnedSynonyms

SHELVES = ["Garage Shelf Unit", "Metal Shelf Rack", "Wall Shelf", "Corner Shelf"]
ITEMS = pd.DataFrame({
    "item_id": [f"s{i}" for i in range(4)] + [f"r{i}" for i in range(3)] + ["d1", "d2", "x1"] + [f"p{i}" for i in range(30)],
    "title": SHELVES + [f"French Door Refrigerator {i}" for i in range(3)] + ["Cordless Drill", "Hammer Drill", "Frig Magnet Set"]
             + [f"Paint Roller {i}" for i in range(30)],
})


def judged(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["query", "item_id", "relevance"])


# Shoppers say "shelves" and "fridge"; the titles say "shelf" and "refrigerator".
JUDGMENTS = judged([
    ("garage shelves", "s0", 3), ("metal shelves", "s1", 2.67), ("shelves", "s2", 2.5), ("corner shelves", "s3", 3),
    ("fridge", "r0", 3), ("fridge", "r2", 2.33),  # 2.33: below the default 2.5, teaches nothing
    ("drill", "d1", 3), ("drill", "d2", 1),
])


@pytest.fixture(scope="module")
def index():
    return KeywordIndex(correct_spelling=False).fit(ITEMS)


def fit(index, **options) -> LearnedSynonyms:
    return LearnedSynonyms(**options).fit(JUDGMENTS, dict(zip(ITEMS["item_id"], ITEMS["title"])), index.analyze)


def test_learns_the_words_titles_use_instead(index):
    synonyms = fit(index)
    shelves, shelf, fridge = (index.analyze(w)[0] for w in ("shelves", "shelf", "fridge"))
    # "rack", "unit", "wall": one relevant pair each, under min_pairs
    assert synonyms.table == {shelves: [(shelf, pytest.approx(1.0))]}  # every relevant title without "shelves" says "shelf"
    assert synonyms.report["relevant_pairs"] == 6
    # "fridge" has one relevant pair (r2's 2.33 is below the threshold): every word of that title stands in for it.
    french_door_refrigerator = set(index.analyze("french door refrigerator"))
    assert {t for t, _ in fit(index, min_pairs=1).table[fridge]} == french_door_refrigerator
    assert {t for t, _ in fit(index, relevant=2.3).table[fridge]} == french_door_refrigerator  # r2 counts: two pairs
    assert fit(index, min_pairs=5).table == {}
    assert synonyms.expand([shelves, shelf]) == []  # a synonym already in the query adds nothing
    assert synonyms.expand([shelves]) == [(shelf, pytest.approx(synonyms.weight))]


def test_keyword_search_finds_items_through_synonyms(index):
    # Without synonyms "fridge" only reaches the magnet set, one typo away ("frig").
    assert [h.item_id for h in index.search("fridge", top=5).hits] == ["x1"]
    index.synonyms = fit(index, min_pairs=1)
    try:
        found = [h.item_id for h in index.search("fridge", top=5).hits]
        assert set(found[:3]) == {"r0", "r1", "r2"} and found[3:] == ["x1"]  # r1 was never judged: the word carries
    finally:
        index.synonyms = None


def test_saved_and_loaded(index, tmp_path):
    synonyms = fit(index)
    path = synonyms.save(tmp_path / "synonyms")
    loaded = LearnedSynonyms.load(tmp_path / "synonyms")
    assert loaded.table == synonyms.table and loaded.evidence == synonyms.evidence == {"shelv": 4} and loaded.weight == synonyms.weight and path.name in (tmp_path / "synonyms" / "latest").read_text()
    (path / "synonyms.json").unlink()
    with pytest.raises(ValueError, match="not learned synonyms"):
        LearnedSynonyms.load(path)
    with pytest.raises(FileNotFoundError, match="no artifact"):
        LearnedSynonyms.load(tmp_path / "nothing")
