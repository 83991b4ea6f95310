"""Keyword search on a handful of products: boosts, typos, prefixes, filters, facets, sorting, paging."""

from __future__ import annotations

import pandas as pd
import pytest

from shelfwise.search import Filters, KeywordIndex
from shelfwise.search.keyword import normalise_units

ITEMS = pd.DataFrame(
    [
        ("p1", "Cordless Drill Kit 20V", "Compact drill with two batteries", "Power Tools", "DeWalt", 129.0, 50, True),
        ("p2", "Hammer Drill 18V", "Drills into concrete", "Power Tools", "Bosch", 149.0, 80, False),
        ("p3", "Claw Hammer 16 oz", "Steel hammer with grip", "Hand Tools", "Estwing", 24.0, 120, True),
        ("p4", "Garden Hose 50 ft", "Kink-free hose", "Garden", "Flexzilla", 39.0, 10, True),
        ("p5", "Screwdriver Set", "Includes bits for a drill", "Hand Tools", "DeWalt", 19.0, 200, True),
    ],
    columns=["item_id", "title", "description", "category", "brand", "price", "popularity", "in_stock"],
)


@pytest.fixture()
def index():
    return KeywordIndex().fit(ITEMS)


def test_title_matches_outrank_description_matches(index):
    ids = index.search("drill").item_ids
    assert set(ids[:2]) == {"p1", "p2"}
    assert ids[-1] == "p5"  # only its description mentions a drill


def test_brand_field_is_searched(index):
    assert index.search("bosch").item_ids == ["p2"]


def test_stemming_matches_plural(index):
    assert "p1" in index.search("drills").item_ids


def test_typo_tolerance(index):
    assert index.search("hamer").item_ids[:2] == ["p3", "p2"]  # p3 says hammer in title and description
    assert "p3" in index.search("hammmer").item_ids


def test_prefix_autocomplete(index):
    assert index.search("screwdr").item_ids == ["p5"]


def test_filters(index):
    assert index.search("drill", filters=Filters(brand="DeWalt")).item_ids == ["p1", "p5"]
    assert index.search("drill", filters=Filters(in_stock=True)).item_ids == ["p1", "p5"]
    assert set(index.search("", filters=Filters(min_price=20, max_price=130)).item_ids) == {"p1", "p3", "p4"}
    assert set(index.search("", filters=Filters(category=["Garden", "Hand Tools"])).item_ids) == {"p3", "p4", "p5"}


def test_filters_do_not_change_scores(index):
    plain = {h.item_id: h.score for h in index.search("drill").hits}
    filtered = index.search("drill", filters=Filters(brand="DeWalt")).hits
    assert all(plain[h.item_id] == pytest.approx(h.score) for h in filtered)


def test_facets(index):
    page = index.search("drill", facets=["brand", "category", "in_stock"])
    assert page.facets["brand"] == {"DeWalt": 2, "Bosch": 1}
    assert page.facets["category"] == {"Power Tools": 2, "Hand Tools": 1}
    assert page.facets["in_stock"] == {"true": 2, "false": 1}


def test_sorting_and_pagination(index):
    assert index.search("", top=5, sort="price_asc").item_ids == ["p5", "p3", "p4", "p1", "p2"]
    assert index.search("", top=2, sort="price_desc").item_ids == ["p2", "p1"]
    assert index.search("", top=1, sort="popularity").item_ids == ["p5"]
    page = index.search("", top=2, offset=2, sort="price_asc")
    assert page.item_ids == ["p4", "p1"] and page.total == 5
    with pytest.raises(ValueError):
        index.search("x", sort="colour")


def test_add_replace_remove(index):
    index.add(pd.DataFrame([{"item_id": "p4", "title": "Drill Bit Set"}, {"item_id": "p6", "title": "Laser Level"}]))
    assert len(index) == 6
    assert "p4" in index.search("bit").item_ids
    assert index.search("hose").item_ids == []
    index.remove(["p6", "unknown"])
    assert index.search("laser").item_ids == [] and len(index) == 5


def test_matching_applies_filters_to_other_ids(index):
    assert index.matching(["p1", "p2", "p3"], Filters(in_stock=True)) == {"p1", "p3"}


def test_minimal_columns_and_reopen(tmp_path):
    items = pd.DataFrame({"item_id": [1, 2], "title": ["angle bracket", "shelf bracket"]})
    KeywordIndex(path=tmp_path / "kw", fuzzy_weight=0.2).fit(items)
    reopened = KeywordIndex.open(tmp_path / "kw")
    assert reopened.fuzzy_weight == 0.2
    assert reopened.search("bracket").total == 2
    assert reopened.search("angle").item_ids == ["1"]
    reopened.add(pd.DataFrame({"item_id": ["3"], "title": ["angle grinder"]}))
    assert set(KeywordIndex.open(tmp_path / "kw").search("angle").item_ids) == {"1", "3"}


def test_empty_index_and_bad_columns():
    assert KeywordIndex().search("drill").hits == []
    with pytest.raises(ValueError, match="item_id and title"):
        KeywordIndex().fit(pd.DataFrame({"name": ["x"]}))


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        KeywordIndex(path=tmp_path).fit(pd.DataFrame({"item_id": ["1"], "title": ["x"]}))
    assert (tmp_path / "precious.txt").exists()
    KeywordIndex(path=tmp_path / "kw").fit(pd.DataFrame({"item_id": ["1"], "title": ["x"]}))
    KeywordIndex(path=tmp_path / "kw").fit(pd.DataFrame({"item_id": ["2"], "title": ["y"]}))  # rebuilding our own is fine
    assert KeywordIndex.open(tmp_path / "kw").search("y").item_ids == ["2"]


UNIT_ITEMS = pd.DataFrame(
    [
        ("u1", "Pressure-Treated Lumber 2 in. x 4 in. x 8 ft."),
        ("u2", "Garden Hose 10 feet"),
        ("u2-decoy", "Garden Hose 50 feet"),
        ("u3", "Copper Pipe 1/2 inch"),
        ("u3-decoy", "Copper Pipe 1/2"),
        ("u4", "Cordless Drill 20 Volt"),
        ("u4-decoy", "Cordless Drill 20 Pack"),
    ],
    columns=["item_id", "title"],
)


def test_units_written_any_way_meet():
    assert normalise_units("2x4 10ft 1/2\" 5 gallons") == "2 x 4 10 ft  1/2 in  5 gal "
    assert normalise_units("8' rail, 1990's style") == "8 ft  rail, 1990's style"
    index = KeywordIndex(correct_spelling=False, prefix_weight=0).fit(UNIT_ITEMS)
    assert index.search("2x4x8").item_ids[0] == "u1"  # one token as typed: it matches nothing
    # Each decoy ties (or wins) on the words as typed; only the unit, written the catalogue's way, separates them.
    for query, item in (("10ft hose", "u2"), ("1/2in pipe", "u3"), ("20v drill", "u4")):
        scores = {h.item_id: h.score for h in index.search(query).hits}
        assert scores[item] > scores[f"{item}-decoy"], query


def test_unknown_words_search_as_their_spelling_correction(tmp_path):
    # "drll" is too short for the fuzzy match; only the correction finds the drill.
    assert KeywordIndex(correct_spelling=False).fit(ITEMS).search("drll").item_ids == []
    index = KeywordIndex(path=tmp_path / "kw").fit(ITEMS)
    assert index.corrected("cordles drll") == "cordless drill"
    assert index.search("drll").item_ids[:2] in (["p1", "p2"], ["p2", "p1"])
    # The vocabulary is saved with the index and grows with the catalogue.
    reopened = KeywordIndex.open(tmp_path / "kw")
    assert reopened.search("drll").item_ids[:2] in (["p1", "p2"], ["p2", "p1"])
    assert reopened.search("clmp").item_ids == []
    reopened.add(pd.DataFrame([("p9", "Bar Clamp")], columns=["item_id", "title"]))
    assert reopened.search("clmp").item_ids == ["p9"]  # too short for fuzzy: the correction finds it


def test_words_side_by_side_outrank_words_apart():
    items = pd.DataFrame([("a", "Deck Board Screws"), ("b", "Board Game Deck")], columns=["item_id", "title"])
    hits = KeywordIndex().fit(items).search("deck board").hits
    assert [h.item_id for h in hits] == ["a", "b"] and hits[0].score > hits[1].score
    flat = KeywordIndex(phrase_weight=0).fit(items).search("deck board").hits
    assert flat[0].score == pytest.approx(flat[1].score)
