"""Home Depot product search: quality (NDCG@10, Recall@100) and latency (p50/p99) per search mode.

Open retrieval over all 54,667 products; queries are the held-out "test" part of judgments_dev.csv
(split by query, shelfwise.tuning.judgments.HOMEDEPOT_SPLIT), scored by ../shared/eval/search_score.py.
Each mode is run through the CLI (`shelfwise search run`), exactly as a user would.

usage: python benchmarks/search_homedepot.py [--model DIR] [--modes keyword,semantic,hybrid]
                                             [--work /tmp/shelfwise-bench] [--latency-queries 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "homedepot"
SCORER = SHARED / "eval" / "search_score.py"


def machine() -> str:
    import torch

    load = os.getloadavg()
    return (
        f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), load avg {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def run(cmd: list[str], env: dict) -> str:
    print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
    started = time.perf_counter()
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)
    return out


def latency(engine, mode: str, queries: list[str], top: int = 100) -> tuple[float, float]:
    search = {
        "keyword": lambda q: engine.keyword.search(q, top=top),
        "semantic": lambda q: engine.semantic.search(q, top=top),
        "hybrid": lambda q: engine.hybrid.search(q, top=top),
        "hybrid-rerank": lambda q: engine.reranker.rerank(q, engine.hybrid.search(q, top=top).hits, engine.texts),
    }[mode]
    for q in queries[:10]:  # warm-up: first calls pay for lazy initialisation
        search(q)
    times = []
    for q in queries:
        started = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="fine-tuned encoder folder (search finetune --out)")
    parser.add_argument("--modes", default="keyword,semantic,hybrid")
    parser.add_argument("--work", type=Path, default=Path("/tmp/shelfwise-bench"))
    parser.add_argument("--latency-queries", type=int, default=300, help="0: quality only")
    parser.add_argument("--split", default="test", help="which part of the dev split to report on")
    parser.add_argument("--reranker", type=Path, help="trained cross-encoder folder or its ONNX export, for mode hybrid-rerank")
    parser.add_argument("--run-args", default="", help="more `search run` options, e.g. '--fusion rrf --semantic-weight 1.5'")
    parser.add_argument("--tag", help="name for this configuration in the table")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"Home Depot data not found at {DATA}")

    from shelfwise.tuning.judgments import HOMEDEPOT_SPLIT, read_judgments, split_by_query

    args.work.mkdir(parents=True, exist_ok=True)
    judgments = split_by_query(read_judgments(DATA / "judgments_dev.csv"), HOMEDEPOT_SPLIT)[args.split]
    judgments_path = args.work / f"judgments_{args.split}.csv"
    judgments.rename(columns={"item_id": "product_id"}).to_csv(judgments_path, index=False)
    queries = list(dict.fromkeys(judgments["query"]))
    queries_path = args.work / f"queries_{args.split}.txt"
    queries_path.write_text("\n".join(queries) + "\n")

    print("machine:", machine())
    print(f"data: {DATA / 'products.csv'} (all products), {args.split} queries of judgments_dev.csv: "
          f"{len(queries)} queries, {len(judgments)} judgments")
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))

    env = {**os.environ, "SHELFWISE_HOME": str(args.work / "home"), "HF_HUB_OFFLINE": "1"}
    tag = args.tag or (args.model.name if args.model else "pretrained")
    extra = shlex.split(args.run_args)
    rows = []
    for mode in args.modes.split(","):
        out = args.work / f"run_{tag}_{mode}.tsv"
        cmd = [sys.executable, "-m", "shelfwise.commands.search", "run", "--products", str(DATA / "products.csv"),
               "--queries", str(queries_path), "--mode", mode, "--top", "100", "--out", str(out)]
        if args.model:
            cmd += ["--model", str(args.model)]
        if args.reranker:
            cmd += ["--reranker", str(args.reranker)]
        run(cmd + extra, env)
        score = run([sys.executable, str(SCORER), str(out), str(judgments_path)], env).strip()
        print(" ", score, flush=True)
        rows.append((mode, score))
    if not args.latency_queries:  # quality only (e.g. while other jobs hold the cores)
        return

    # Latency: one query at a time, top 100, on the indexes the runs above cached.
    os.environ.update(env)
    from shelfwise.config import settings
    from shelfwise.encoders import load_text_encoder
    from shelfwise.search.engine import SearchEngine, read_products

    encoder, encoder_id = load_text_encoder(args.model)  # the one the runs above used (same cache key)
    from shelfwise.commands.search import run as run_command

    # The same settings the CLI used: parse the extra options with the command's own parser.
    options = run_command.make_context("run", ["--products", "-", "--queries", "-", "--out", "-", *extra], resilient_parsing=True).params
    reranker = None
    if args.reranker:
        from shelfwise.search.rerank import load_reranker

        reranker = load_reranker(args.reranker, top_n=options.get("rerank_top") or 20, first_stage_weight=options.get("first_stage_weight") or 0.0)
    learned = None
    if options.get("fusion_model"):
        from shelfwise.search.learned_fusion import LearnedFusion

        learned = LearnedFusion.load(options["fusion_model"])
    engine = SearchEngine(
        encoder, encoder_id=encoder_id, cache_dir=settings().home / "search" / "indexes", reranker=reranker,
        fusion=options["fusion"], weights=(options["keyword_weight"], options["semantic_weight"]), rrf_k=options["rrf_k"],
        learned_fusion=learned,
    ).fit(read_products(DATA / "products.csv"))
    sample = queries[: args.latency_queries]
    print(f"\nlatency over {len(sample)} queries, one at a time, top 100 ({machine()})")
    print(f"| mode | {args.split} queries | NDCG@10 | Recall@100 | MRR@10 | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode, score in rows:
        fields = dict(part.split("=") for part in score.split())
        p50, p99 = latency(engine, mode, sample)
        print(f"| {mode} ({tag}) | {fields['queries']} | {fields['NDCG@10']} | {fields['Recall@100']} | {fields['MRR@10']} | {p50:.1f} | {p99:.1f} |", flush=True)


if __name__ == "__main__":
    main()
