"""Choose hybrid fusion settings on the *valid* dev queries (never the test ones).

Retrieves each query's keyword and semantic top 100 once, then fuses them under every setting in
a small grid (RRF with several k and weights; weighted score fusion with several weights) and
prints NDCG@10 / Recall@100 (same definitions as search_score.py) per setting, best first. With
--reranker, the best fusion setting's top N is then reordered by the cross-encoder for several N.
Report the chosen setting's test numbers with search_homedepot.py / `search run --fusion ... --*-weight`.

usage: python benchmarks/search_fusion_sweep.py [--model DIR] [--reranker DIR] [--work /tmp/shelfwise-bench] [--split valid]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "homedepot"


def recall_at_100(ranked: list[str], gains: dict[str, float]) -> float | None:
    good = {d for d, g in gains.items() if g >= 1.5}
    return len(good & set(ranked[:100])) / len(good) if good else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/shelfwise-bench"))
    parser.add_argument("--split", default="valid")
    parser.add_argument("--reranker", type=Path, help="cross-encoder (artifact or ONNX export) to rerank the best fusion's top N")
    parser.add_argument("--rerank-tops", default="10,20,30", help="the N values to try")
    args = parser.parse_args()
    os.environ.setdefault("SHELFWISE_HOME", str(args.work / "home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from search_homedepot import machine

    from shelfwise.config import settings
    from shelfwise.encoders import load_text_encoder
    from shelfwise.search.engine import SearchEngine, read_products
    from shelfwise.search.hybrid import FUSIONS
    from shelfwise.tuning.judgments import HOMEDEPOT_SPLIT, query_gains, read_judgments, split_by_query
    from shelfwise.tuning.validation import ndcg_at_k

    print("machine:", machine())
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    judgments = split_by_query(read_judgments(DATA / "judgments_dev.csv"), HOMEDEPOT_SPLIT)[args.split]
    gains = query_gains(judgments)
    queries = list(gains)
    print(f"data: {args.split} queries of judgments_dev.csv: {len(queries)}")
    encoder, encoder_id = load_text_encoder(args.model)
    engine = SearchEngine(encoder, encoder_id=encoder_id, cache_dir=settings().home / "search" / "indexes", progress=True)
    engine.fit(read_products(DATA / "products.csv"))
    keyword = [engine.keyword.search(q, top=100).hits for q in queries]
    semantic_as_typed = [p.hits for p in engine.semantic.search_many(queries, top=100)]
    # What the hybrid mode encodes: the query with the keyword index's spelling corrections.
    semantic = [p.hits for p in engine.semantic.search_many([engine.keyword.corrected(q) for q in queries], top=100)]

    def evaluate(rankings: list[list[str]]) -> tuple[float, float]:
        ndcg = np.mean([ndcg_at_k(r, gains[q]) for q, r in zip(queries, rankings)])
        recalls = [recall_at_100(r, gains[q]) for q, r in zip(queries, rankings)]
        return float(ndcg), float(np.mean([x for x in recalls if x is not None]))

    rows = [("keyword only", *evaluate([[h.item_id for h in hits] for hits in keyword])),
            ("semantic only, query as typed", *evaluate([[h.item_id for h in hits] for hits in semantic_as_typed])),
            ("semantic only, spelling-corrected query", *evaluate([[h.item_id for h in hits] for hits in semantic]))]
    grid = {
        "rrf": itertools.product([10, 30, 60], [0.5, 0.75, 1.0, 1.25, 1.5, 2.0]),
        "weighted": itertools.product([60], [0.25, 0.5, 0.75, 1.0, 1.5, 2.0]),
    }
    fusions, fusion_scores = {}, {}
    for fusion, settings_grid in grid.items():
        for k, semantic_weight in settings_grid:
            name = f"{fusion} k={k} weights=(1, {semantic_weight})"
            fused = [FUSIONS[fusion]([kw, se], (1.0, semantic_weight), k=k)[:100] for kw, se in zip(keyword, semantic)]
            fusions[name] = [[h.item_id for h in hits] for hits in fused]
            fusion_scores[name] = [[h.score for h in hits] for hits in fused]
            rows.append((name, *evaluate(fusions[name])))
            typed = [FUSIONS[fusion]([kw, se], (1.0, semantic_weight), k=k)[:100] for kw, se in zip(keyword, semantic_as_typed)]
            rows.append((f"{name}, semantic on the query as typed", *evaluate([[h.item_id for h in hits] for hits in typed])))
    if args.reranker:
        from shelfwise.search import Hit
        from shelfwise.search.rerank import load_reranker

        reranker = load_reranker(args.reranker)
        best = max((r for r in rows if r[0] in fusions), key=lambda r: r[1])[0]
        depths = sorted(int(n) for n in args.rerank_tops.split(","))
        # Score the deepest N once; a shallower N reorders a prefix of the same scores.
        scores = [reranker.score(q, [engine.texts.get(i, "") for i in ranked[: depths[-1]]]) for q, ranked in zip(queries, fusions[best])]
        first_stage = fusion_scores[best]
        for n in depths:
            reranker.top_n = n
            for weight in (0.0, 0.5, 1.0, 2.0):
                reranker.first_stage_weight = weight
                reranked = [
                    [h.item_id for h in reranker.rerank(q, [Hit(i, f) for i, f in zip(ranked, fs)], {}, scores=s[:n])]
                    for q, ranked, fs, s in zip(queries, fusions[best], first_stage, scores)
                ]
                rows.append((f"{best}, reranked top {n}, first-stage weight {weight}", *evaluate(reranked)))
    print(f"\n| setting ({args.split}) | NDCG@10 | Recall@100 |\n| --- | --- | --- |")
    for name, ndcg, recall in sorted(rows, key=lambda r: -r[1]):
        print(f"| {name} | {ndcg:.4f} | {recall:.4f} |")


if __name__ == "__main__":
    main()
