"""Latency of one recommendation request inside the process: a saved sequential recommender scores one
history at a time (as the API does), with its re-ranker and without it (the blend alone).

    .venv/bin/python benchmarks/recommend_latency.py --model DIR/model --data ../shared/data/amazon_beauty/Beauty.txt

Histories are the data's test histories (every user's items before the last), drawn with a seed.
Prints p50 / p99 milliseconds for each variant, taking turns so that outside load falls on both alike.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from shelfwise.datasets.formats import read_user_sequences
from shelfwise.recommenders.neural import SequentialRecommender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a saved SequentialRecommender (bench sequential writes DIR/model)")
    parser.add_argument("--data", required=True, help="user sequences, one user per line")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rec = SequentialRecommender.load(args.model)
    ranker = rec.ranker_
    seqs = read_user_sequences(args.data)
    histories = seqs.take(np.flatnonzero(seqs.lengths >= 2)).truncate(1)
    rows = np.random.default_rng(0).choice(len(histories), args.requests, replace=False)
    variants = {"re-ranked": ranker, "blend only": None} if ranker is not None else {"blend only": None}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for row in rows:
        one = histories.take(np.array([row]))
        for name, model in variants.items():
            rec.ranker_ = model
            start = time.perf_counter()
            rec.score(one)
            times[name].append((time.perf_counter() - start) * 1000)
    print(f"model {args.model}: {rec.network_.config.n_items} items, {args.requests} requests, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, values in times.items():
        print(f"{name:>11}: p50 {np.percentile(values, 50):.1f} ms  p99 {np.percentile(values, 99):.1f} ms")


if __name__ == "__main__":
    main()
