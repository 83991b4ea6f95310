"""What the transitions blend adds, taken apart on a model trained by `bench sequential`.

Loads DIR/model (the network of the selected epoch), then scores the test cases three ways:
the network alone; blended with transitions counted on the training sequences only; blended with
transitions recounted on the test histories (what `bench sequential` does). The blend weight is
the one `fit` chose on validation (saved in the model), so nothing here looks at test to choose.

    .venv/bin/python benchmarks/sequential_blend.py --data ../shared/data/amazon_beauty/Beauty.txt --run DIR
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see commands/recommend.py

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="per-user sequence file")
    parser.add_argument("--run", type=Path, required=True, help="a `bench sequential` output folder (with model/)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from shelfwise.commands.recommend import _read_benchmark
    from shelfwise.evaluation.metrics import evaluate_ranking
    from shelfwise.recommenders.baselines import ItemTransitions
    from shelfwise.recommenders.blend import blended_scores
    from shelfwise.recommenders.neural import SequentialRecommender
    from shelfwise.training.sequential import score_histories

    torch.set_num_threads(args.threads)
    split, test_history, test_target, _ = _read_benchmark(args.data, "user-sequences")
    rec = SequentialRecommender.load(args.run / "model")
    weight = rec.transitions_weight_
    rows = {
        "network alone": None,
        "blend, transitions counted on training sequences": ItemTransitions().fit(split.train),
        "blend, transitions recounted on the test histories": ItemTransitions().fit(test_history),
    }
    print(f"model {args.run / 'model'}; blend weight chosen on validation: {weight}")
    for name, transitions in rows.items():
        metrics, _ = evaluate_ranking(
            lambda h, t=transitions: blended_scores(score_histories(rec.network_, h), t, h, weight if t else 0.0),
            test_history, test_target)
        print(json.dumps({"scoring": name, "test_ndcg@10": round(metrics["ndcg@10"], 4), "test_hr@10": round(metrics["hr@10"], 4)}))


if __name__ == "__main__":
    main()
