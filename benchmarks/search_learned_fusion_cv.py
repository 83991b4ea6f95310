"""How much the learned fusion adds, measured on Home Depot without touching *test*.

1. 5-fold cross-validation by query inside *valid* (the queries the encoder never trained on):
   the learned fusion fitted on four folds reorders the fifth; weighted fusion on the same folds.
2. The learned fusion fitted on *train* (the encoder's own training queries), scored on *valid*.
3. Recall@100 on *valid*: the weighted top 100 against the union of both retrievers' lists, and
   with each retriever read deeper.

    python benchmarks/search_learned_fusion_cv.py --model /tmp/hd/models/full-none-800 --work /tmp/hd
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "homedepot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="the fine-tuned encoder (search finetune --out)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/shelfwise-bench"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("SHELFWISE_HOME", str(args.work / "home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from common import header
    from search_fusion_sweep import recall_at_100

    from shelfwise.config import settings
    from shelfwise.encoders import load_text_encoder
    from shelfwise.search.engine import SearchEngine, read_products
    from shelfwise.search.learned_fusion import LearnedFusion
    from shelfwise.tuning.judgments import HOMEDEPOT_SPLIT, query_gains, read_judgments, split_by_query
    from shelfwise.tuning.validation import ndcg_at_k

    print(header(f"{DATA}: products.csv, train and valid parts of judgments_dev.csv"))
    parts = split_by_query(read_judgments(DATA / "judgments_dev.csv"), HOMEDEPOT_SPLIT)
    encoder, encoder_id = load_text_encoder(args.model)
    engine = SearchEngine(encoder, encoder_id=encoder_id, cache_dir=settings().home / "search" / "indexes", progress=True)
    hybrid = engine.fit(read_products(DATA / "products.csv")).hybrid

    def candidates(part: str, depth: int = 100):
        """Per query: (gains, keyword hits, semantic hits, weighted top 100 ids, their features)."""
        gains = query_gains(parts[part])
        out = []
        for query, found in zip(gains, hybrid.retrieve_many(list(gains), depth)):
            head = [h.item_id for h in hybrid.fuse(found.keyword, found.semantic)[:100]]
            features = hybrid.candidate_features(query, found.keyword, found.semantic, head, found.vector)
            out.append((gains[query], found.keyword, found.semantic, head, features))
        return out

    def learned_order(fusion, row):
        _, _, _, head, features = row
        return [head[i] for i in np.argsort(-fusion.score(features), kind="stable")]

    def lists(rows):
        return [(r[4], np.array([r[0].get(i, 0.0) for i in r[3]], np.float32)) for r in rows]

    valid = candidates("valid")
    folds = np.array_split(np.random.default_rng(0).permutation(len(valid)), args.folds)
    learned, weighted = [], []
    for k, held in enumerate(folds):
        fit_rows = [valid[i] for j, fold in enumerate(folds) if j != k for i in fold]
        fusion = LearnedFusion().fit(lists(fit_rows))
        for i in held:
            learned.append(ndcg_at_k(learned_order(fusion, valid[i]), valid[i][0]))
            weighted.append(ndcg_at_k(valid[i][3], valid[i][0]))
    print(f"\n{args.folds}-fold CV inside valid ({len(valid)} queries), NDCG@10: learned fusion {np.mean(learned):.4f}, "
          f"weighted fusion {np.mean(weighted):.4f}")

    on_train = LearnedFusion().fit(lists(candidates("train")))
    scores = [ndcg_at_k(learned_order(on_train, row), row[0]) for row in valid]
    print(f"fitted on train ({on_train.report['queries']} queries with a relevant candidate), scored on valid: NDCG@10 {np.mean(scores):.4f}")

    print("\nvalid Recall@100 | weighted top 100 | union of both lists (mean size)")
    for depth in (100, 200, 300):
        rows = candidates("valid", depth) if depth > 100 else valid
        top = [recall_at_100(r[3], r[0]) for r in rows]
        size = np.mean([len({h.item_id for h in r[1]} | {h.item_id for h in r[2]}) for r in rows])
        union_all = [len({i for i, g in r[0].items() if g >= 1.5} & ({h.item_id for h in r[1]} | {h.item_id for h in r[2]})) /
                     max(1, len({i for i, g in r[0].items() if g >= 1.5})) for r in rows if any(g >= 1.5 for g in r[0].values())]
        print(f"each retriever {depth} deep | {np.mean([x for x in top if x is not None]):.4f} | "
              f"{np.mean(union_all):.4f} ({size:.0f} items)")


if __name__ == "__main__":
    main()
