"""SearchEngine: lazy index building, the on-disk cache, products CSV validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.search.engine import SearchEngine, read_products


class CountingEncoder:
    """A stand-in encoder that counts how many texts it embedded (the test is about caching)."""

    dim = 4

    def __init__(self):
        self.encoded = 0

    def encode(self, texts, batch_size=64, progress=False):
        self.encoded += len(texts)
        vectors = np.array([[len(t), t.count("o"), t.count("e"), 1.0] for t in texts], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


ITEMS = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["red hose", "blue drill", "green fan"]})


def test_keyword_mode_never_encodes_the_catalogue():
    encoder = CountingEncoder()
    engine = SearchEngine(encoder).fit(ITEMS)
    assert engine.search("drill", mode="keyword").item_ids == ["2"]
    assert encoder.encoded == 0
    engine.search("drill", mode="hybrid")
    assert encoder.encoded == 3 + 1
    with pytest.raises(ValueError, match="mode"):
        engine.search("drill", mode="magic")


def test_cache_reuses_indexes(tmp_path):
    first = CountingEncoder()
    pages = SearchEngine(first, cache_dir=tmp_path).fit(ITEMS).search_many(["hose", "fan"], mode="hybrid", top=3)
    second = CountingEncoder()
    again = SearchEngine(second, cache_dir=tmp_path).fit(ITEMS).search_many(["hose", "fan"], mode="hybrid", top=3)
    assert second.encoded == 2  # only the queries: the catalogue vectors came from the cache
    assert [p.item_ids for p in again] == [p.item_ids for p in pages]
    other = CountingEncoder()
    SearchEngine(other, encoder_id="tuned", cache_dir=tmp_path).fit(ITEMS).search("hose", mode="semantic")
    assert other.encoded == 3 + 1  # another encoder never reuses these vectors


def test_read_products(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("product_id,title,price\n007,Drill,9.5\n8,,\n")
    items = read_products(path)
    assert items["item_id"].tolist() == ["007", "8"] and items["title"].tolist() == ["Drill", ""]
    path.write_text("product_id,title\n1,a\n1,b\n")
    with pytest.raises(ValueError, match="line 3: duplicate"):
        read_products(path)
