"""`search run` and `search finetune` end to end on a tiny catalogue (real MiniLM)."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from shelfwise.commands.search import ADVERSARY_NAMES, COMMANDS, METHOD_NAMES, MODES, search
from shelfwise.config import Settings

PRODUCTS = "product_id,title\n1,Cordless Drill Kit\n2,Hammer Drill\n3,Claw Hammer\n4,Garden Hose 50 ft\n5,Hose Nozzle\n6,Ceiling Fan\n"
JUDGMENTS_ROWS = [
    ("drill", 1, 3), ("drill", 3, 1), ("hammer", 3, 3), ("hose", 4, 2.67), ("fan", 6, 3), ("garden hose", 4, 3),
    ("nozzle", 5, 2.5), ("ceiling fan", 6, 3), ("cordless drill", 1, 3), ("claw hammer", 3, 3), ("hammer drill", 2, 3),
    ("spray nozzle", 5, 3), ("drill kit", 1, 3), ("fan light", 6, 2.5), ("water hose", 4, 3), ("hose end", 5, 2.5),
]
JUDGMENTS = "query,product_id,relevance\n" + "".join(f"{q},{i},{r}\n" for q, i, r in JUDGMENTS_ROWS)


def test_registries_match_cli_choices():
    from shelfwise.search.engine import SearchEngine
    from shelfwise.tuning.adversarial import ADVERSARIES
    from shelfwise.tuning.methods import METHODS

    assert set(METHOD_NAMES) == set(METHODS) and set(ADVERSARY_NAMES) == set(ADVERSARIES)
    assert set(MODES) == set(SearchEngine(encoder=None).modes)
    assert COMMANDS == [search]


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "products.csv").write_text(PRODUCTS)
    (tmp_path / "queries.txt").write_text("drill\ngarden hose\n\ndrill\nhamer\n")
    (tmp_path / "judgments.csv").write_text(JUDGMENTS)
    return tmp_path


def _run(args, tmp_path):
    result = CliRunner().invoke(search, args, obj=Settings(home=tmp_path / "home", quiet=True), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("mode", [m for m in MODES if m != "hybrid-rerank"])
def test_run_writes_tsv(mode, files):
    out = files / f"run_{mode}.tsv"
    _run(["run", "--products", str(files / "products.csv"), "--queries", str(files / "queries.txt"), "--mode", mode, "--top", "3", "--out", str(out)], files)
    rows = list(csv.reader(out.open(), delimiter="\t"))
    assert rows[0] == ["query", "product_id", "rank", "score"]
    by_query = {}
    for query, product, rank, score in rows[1:]:
        by_query.setdefault(query, []).append((int(rank), product, float(score)))
    assert list(by_query) == ["drill", "garden hose", "hamer"]  # blank and repeated lines dropped
    assert all([r for r, _, _ in hits] == list(range(1, len(hits) + 1)) for hits in by_query.values())
    assert by_query["garden hose"][0][1] == "4"
    if mode == "keyword":
        assert {p for _, p, _ in by_query["hamer"]} >= {"2", "3"}  # typo tolerance


def test_run_rejects_bad_products(files):
    (files / "bad.csv").write_text("sku,name\n1,x\n")
    result = CliRunner().invoke(search, ["run", "--products", str(files / "bad.csv"), "--queries", str(files / "queries.txt"), "--out", str(files / "o.tsv")], obj=Settings(home=files / "home", quiet=True))
    assert result.exit_code != 0 and "missing column" in result.output


def test_finetune_then_run_with_model(files):
    out = files / "model"
    result = _run(
        ["finetune", "--products", str(files / "products.csv"), "--judgments", str(files / "judgments.csv"), "--method", "lora",
         "--adversarial", "fgm", "--out", str(out), "--max-steps", "2", "--batch-size", "16", "--eval-every", "1", "--valid-fraction", "0.3"],
        files,
    )
    report = json.loads(result.stdout)
    assert report["steps"] == 2 and report["trainable_fraction"] < 0.02
    assert (out / "latest").is_file()
    run_out = files / "run_tuned.tsv"
    _run(["run", "--products", str(files / "products.csv"), "--queries", str(files / "queries.txt"), "--model", str(out), "--mode", "semantic", "--top", "2", "--out", str(run_out)], files)
    assert len(run_out.read_text().splitlines()) == 1 + 3 * 2


def test_finetune_on_the_stores_own_search_logs(files):
    """No files: the catalogue and the judgments come from the store (searches followed by
    clicks, carts or purchases in the same session; skipped impressions are negatives)."""
    import pandas as pd

    from shelfwise.ingest import ingest_frame
    from shelfwise.search.engine import read_products
    from shelfwise.store import Store

    settings = Settings(home=files / "home", quiet=True)
    empty = CliRunner().invoke(search, ["finetune", "--out", str(files / "m0")], obj=settings)
    assert empty.exit_code != 0 and "0 items and 0 search judgments" in empty.output
    half = CliRunner().invoke(search, ["finetune", "--products", str(files / "products.csv"), "--out", str(files / "m0")], obj=settings)
    assert half.exit_code != 0 and "both --products and --judgments, or neither" in half.output

    store = Store.open(settings)
    ingest_frame(store, "items", read_products(files / "products.csv"))
    rows = []
    for n, (query, item, other) in enumerate([(q, str(i), "6" if i != 6 else "1") for q, i, r in JUDGMENTS_ROWS if r >= 2.5]):
        t = 1_700_000_000 + 600 * n
        rows += [{"session_id": f"s{n}", "type": "search", "query": query, "ts": t},
                 {"session_id": f"s{n}", "type": "impression", "item_id": other, "position": 0, "ts": t + 1},
                 {"session_id": f"s{n}", "type": "click", "item_id": item, "ts": t + 5}]
    ingest_frame(store, "events", pd.DataFrame(rows))
    store.close()
    out = files / "from-logs"
    result = _run(["finetune", "--method", "lora", "--out", str(out), "--max-steps", "2", "--batch-size", "4",
                   "--eval-every", "1", "--valid-fraction", "0.3"], files)
    assert json.loads(result.stdout)["steps"] == 2 and (out / "latest").is_file()


def test_suggest(files):
    (files / "past.txt").write_text("garden hose reel\ngarden hose reel\n")
    result = _run(["suggest", "--products", str(files / "products.csv"), "--past-queries", str(files / "past.txt"), "garden h", "hamer"], files)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["suggestions"][0] == "garden hose reel"
    assert lines[1]["corrected"] == "hammer" and lines[1]["suggestions"][0] == "hammer"


def test_reranker_finetune_then_hybrid_rerank(files):
    out = files / "reranker"
    result = _run(
        ["finetune", "--target", "cross-encoder", "--method", "full", "--products", str(files / "products.csv"), "--judgments", str(files / "judgments.csv"),
         "--out", str(out), "--max-steps", "2", "--batch-size", "16", "--eval-every", "1", "--valid-fraction", "0.3"],
        files,
    )
    assert json.loads(result.stdout)["steps"] == 2
    run_out = files / "run_rerank.tsv"
    _run(["run", "--products", str(files / "products.csv"), "--queries", str(files / "queries.txt"), "--mode", "hybrid-rerank",
          "--reranker", str(out), "--rerank-top", "3", "--top", "4", "--out", str(run_out)], files)
    rows = list(csv.reader(run_out.open(), delimiter="\t"))[1:]
    assert len(rows) == 3 * 4
    scores = [float(r[3]) for r in rows if r[0] == "drill"]
    assert scores == sorted(scores, reverse=True)
    # A large first-stage weight keeps the hybrid order of the reranked top 3.
    hybrid_out, mixed_out = files / "run_hybrid_only.tsv", files / "run_mixed.tsv"
    common = ["--products", str(files / "products.csv"), "--queries", str(files / "queries.txt"), "--top", "4"]
    _run(["run", *common, "--mode", "hybrid", "--out", str(hybrid_out)], files)
    _run(["run", *common, "--mode", "hybrid-rerank", "--reranker", str(out), "--rerank-top", "3", "--first-stage-weight", "1000",
          "--out", str(mixed_out)], files)
    ranked = lambda path: [(r[0], r[1]) for r in list(csv.reader(path.open(), delimiter="\t"))[1:]]  # noqa: E731
    assert ranked(mixed_out) == ranked(hybrid_out)


def test_hybrid_rerank_needs_reranker(files):
    result = CliRunner().invoke(search, ["run", "--products", str(files / "products.csv"), "--queries", str(files / "queries.txt"), "--mode", "hybrid-rerank", "--out", str(files / "o.tsv")], obj=Settings(home=files / "home", quiet=True))
    assert result.exit_code != 0 and "--reranker" in result.output


def test_fit_fusion_then_run_with_it(files):
    report = json.loads(_run(["fit-fusion", "--products", str(files / "products.csv"), "--judgments", str(files / "judgments.csv"),
                              "--epochs", "3"], files).stdout)
    assert report["queries"] > 0 and len(report["loss_per_epoch"]) == 3 and set(report["feature_weights"]) >= {"keyword_score", "word_coverage"}
    out = files / "home" / "artifacts" / "search-fusion"  # without --out: where the API looks for it
    assert (out / "latest").is_file() and report["artifact"].startswith(str(out))
    common = ["--products", str(files / "products.csv"), "--queries", str(files / "queries.txt"), "--top", "6"]
    plain_out, learned_out = files / "run_plain.tsv", files / "run_learned.tsv"
    _run(["run", *common, "--out", str(plain_out)], files)
    _run(["run", *common, "--fusion-model", str(out), "--out", str(learned_out)], files)
    rows = lambda path: list(csv.reader(path.open(), delimiter="\t"))[1:]  # noqa: E731
    # The same candidates (all 6 products: the weighted fusion's whole list), scored by the learned model instead.
    assert {(r[0], r[1]) for r in rows(learned_out)} == {(r[0], r[1]) for r in rows(plain_out)}
    assert [r[3] for r in rows(learned_out)] != [r[3] for r in rows(plain_out)]
    bad = CliRunner().invoke(search, ["run", *common, "--fusion-model", str(files), "--out", str(files / "o.tsv")], obj=Settings(home=files / "home", quiet=True))
    assert bad.exit_code != 0 and "no artifact" in bad.output


def test_fit_synonyms_then_search_with_them(files):
    # "water hose" and "spray nozzle" were judged; the titles say "garden hose" and "hose nozzle".
    report = json.loads(_run(["fit-synonyms", "--products", str(files / "products.csv"), "--judgments", str(files / "judgments.csv"),
                              "--min-pairs", "1"], files).stdout)
    assert report["words"] > 0 and report["examples"]["water"] == [["garden", 1.0]]
    out = files / "home" / "artifacts" / "search-synonyms"  # without --out: where the API looks for it
    assert (out / "latest").is_file() and report["artifact"].startswith(str(out))
    (files / "water.txt").write_text("water\n")
    common = ["--products", str(files / "products.csv"), "--queries", str(files / "water.txt"), "--mode", "keyword"]
    _run(["run", *common, "--out", str(files / "plain.tsv")], files)
    _run(["run", *common, "--synonyms", str(out), "--out", str(files / "synonyms.tsv")], files)
    rows = lambda path: list(csv.reader(path.open(), delimiter="\t"))[1:]  # noqa: E731
    assert rows(files / "plain.tsv") == [] and [r[1] for r in rows(files / "synonyms.tsv")] == ["4"]
    bad = CliRunner().invoke(search, ["run", *common, "--synonyms", str(files), "--out", str(files / "o.tsv")],
                             obj=Settings(home=files / "home", quiet=True))
    assert bad.exit_code != 0 and "no artifact" in bad.output
