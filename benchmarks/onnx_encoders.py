"""The text encoder through torch, ONNX Runtime fp32 and ONNX Runtime int8: agreement, search quality, speed.

1. Agreement: cosine of each ONNX vector to the torch vector, and the largest absolute difference of
   any coordinate, over --agreement-titles Home Depot product titles (a seeded random sample).
2. Search quality: semantic-only retrieval (faiss exact, top 100) of the Home Depot held-out *test*
   queries (shelfwise.tuning.judgments.HOMEDEPOT_SPLIT), scored by ../shared/eval/search_score.py,
   over all 54,667 products, or with --random-products N over the products judged for those queries
   plus N random others (the full catalogue takes ~25 min per encoder on one loaded thread).
3. Speed, one thread each: texts/s encoding the agreement titles in batches of 64 (median of 3), and
   the latency of single-query encodes (batch 1) over --latency-queries test queries, p50 / p99; the
   encoders take turns so that other jobs on the machine slow them alike.

usage: python benchmarks/onnx_encoders.py [--model DIR] [--work /tmp/shelfwise-onnx-bench]
                                          [--random-products N] [--skip-quality]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch and faiss start their thread pools

import numpy as np
import pandas as pd

from common import header
from search_homedepot import DATA, SCORER


def one_thread_encoders(export_dir: Path, model: Path | None) -> dict:
    import faiss
    import torch

    from shelfwise.encoders import OnnxTextEncoder, TextEncoder

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    return {
        "torch": TextEncoder.from_artifact(model) if model else TextEncoder(),
        "onnx fp32": OnnxTextEncoder(export_dir, int8=False, threads=1),
        "onnx int8": OnnxTextEncoder(export_dir, int8=True, threads=1),
    }


def agreement(reference: np.ndarray, vectors: np.ndarray) -> str:
    cosine = (reference * vectors).sum(1)
    return f"cosine mean {cosine.mean():.5f} min {cosine.min():.5f}, max abs diff {np.abs(reference - vectors).max():.2e}"


def speed(encoders: dict, titles: list[str], queries: list[str], rounds: int = 3) -> dict[str, dict]:
    """Median texts/s over ``rounds`` batch-64 encodes of ``titles``, and p50 / p99 ms of single-query
    encodes. The encoders take turns (round by round, query by query) so that the load of whoever
    else shares the machine falls on all of them alike."""
    per_second = {name: [] for name in encoders}
    for _ in range(rounds):
        for name, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode(titles, batch_size=64)
            per_second[name].append(len(titles) / (time.perf_counter() - started))
    for q in queries[:10]:  # warm-up: first single-query calls allocate
        for encoder in encoders.values():
            encoder.encode([q], batch_size=1)
    times = {name: [] for name in encoders}
    for q in queries:
        for name, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode([q], batch_size=1)
            times[name].append((time.perf_counter() - started) * 1000)
    return {
        name: {"texts/s": float(np.median(per_second[name])), "p50": float(np.percentile(times[name], 50)),
               "p99": float(np.percentile(times[name], 99))}
        for name in encoders
    }


def semantic_scores(encoder, items: pd.DataFrame, queries: list[str], judgments_path: Path, run_path: Path) -> tuple[str, float]:
    """Scorer output of a semantic-only top-100 run, and the seconds spent encoding the catalogue."""
    from shelfwise.search.semantic import SemanticSearch

    started = time.perf_counter()
    search = SemanticSearch(encoder, batch_size=64, progress=True).fit(items)
    encode_seconds = time.perf_counter() - started
    pages = search.search_many(queries, top=100)
    with run_path.open("w", encoding="utf-8") as f:
        f.write("query\tproduct_id\trank\tscore\n")
        for query, page in zip(queries, pages):
            f.writelines(f"{query}\t{hit.item_id}\t{rank}\t{hit.score:.6f}\n" for rank, hit in enumerate(page.hits, start=1))
    score = subprocess.run([sys.executable, str(SCORER), str(run_path), str(judgments_path)], check=True,
                           stdout=subprocess.PIPE, text=True).stdout.strip()
    return score, encode_seconds


def catalogue(products: pd.DataFrame, judged: set[str], random_others: int | None) -> pd.DataFrame:
    """All products, or the judged ones plus ``random_others`` unjudged ones (seeded)."""
    is_judged = products["item_id"].isin(judged)
    if random_others is None or random_others >= int((~is_judged).sum()):
        return products
    others = products[~is_judged].sample(n=random_others, random_state=0)
    return pd.concat([products[is_judged], others]).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="fine-tuned encoder artifact (search finetune --out); default the pretrained MiniLM")
    parser.add_argument("--work", type=Path, default=Path("/tmp/shelfwise-onnx-bench"))
    parser.add_argument("--agreement-titles", type=int, default=1000)
    parser.add_argument("--latency-queries", type=int, default=500)
    parser.add_argument("--random-products", type=int, help="search over the judged products plus this many random others; default all products")
    parser.add_argument("--skip-quality", action="store_true", help="agreement and speed only")
    parser.add_argument("--skip-speed", action="store_true", help="agreement and search quality only")
    parser.add_argument("--quality-encoders", default="torch,onnx fp32,onnx int8", help="which encoders to score (comma-separated)")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"Home Depot data not found at {DATA}")

    from shelfwise.encoders import export_text_encoder
    from shelfwise.search.engine import read_products
    from shelfwise.tuning.judgments import HOMEDEPOT_SPLIT, read_judgments, split_by_query

    products = read_products(DATA / "products.csv")
    judgments = split_by_query(read_judgments(DATA / "judgments_dev.csv"), HOMEDEPOT_SPLIT)["test"]
    queries = list(dict.fromkeys(judgments["query"]))
    items = catalogue(products, set(judgments["item_id"].astype(str)), args.random_products)
    titles = products["title"].sample(n=args.agreement_titles, random_state=0).tolist()
    print(header(f"{DATA} ({len(products):,} products; agreement on {len(titles):,} random titles; "
                 f"semantic search over {len(items):,} products for the {len(queries):,} test queries)"))

    args.work.mkdir(parents=True, exist_ok=True)
    export_dir = args.work / "onnx"
    started = time.perf_counter()
    export_text_encoder(args.model, export_dir, int8=True)
    sizes = {p.name: f"{p.stat().st_size / 1e6:.1f} MB" for p in sorted(export_dir.glob("*.onnx"))}
    print(f"exported to {export_dir} in {time.perf_counter() - started:.1f} s: {sizes}", flush=True)
    encoders = one_thread_encoders(export_dir, args.model)

    reference = encoders["torch"].encode(titles, batch_size=64)
    rows = {name: {"agreement": agreement(reference, encoder.encode(titles, batch_size=64))} for name, encoder in encoders.items()}
    for name in rows:
        print(f"{name}: {rows[name]['agreement']}", flush=True)
    if not args.skip_speed:
        for name, timing in speed(encoders, titles, queries[: args.latency_queries]).items():
            rows[name].update(timing)
            print(f"{name}: {timing['texts/s']:.0f} texts/s; single query p50 {timing['p50']:.2f} ms p99 {timing['p99']:.2f} ms", flush=True)

    if not args.skip_quality:
        judgments_path = args.work / "judgments_test.csv"
        judgments.rename(columns={"item_id": "product_id"}).to_csv(judgments_path, index=False)
        for name in (n.strip() for n in args.quality_encoders.split(",")):
            encoder = encoders[name]
            score, seconds = semantic_scores(encoder, items, queries, judgments_path, args.work / f"run_{name.replace(' ', '_')}.tsv")
            rows[name].update(dict(part.split("=") for part in score.split()), encode_s=seconds)
            print(f"{name}: {score} (catalogue encoded in {seconds:.0f} s)", flush=True)

    print("\n| encoder | cosine to torch (mean / min) | max abs diff | NDCG@10 | Recall@100 | texts/s (batch 64) | query p50 ms | query p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        cosine, diff = row["agreement"].removeprefix("cosine mean ").split(", max abs diff ")
        timing = f"{row['texts/s']:.0f} | {row['p50']:.2f} | {row['p99']:.2f}" if "p50" in row else "- | - | -"
        print(f"| {name} | {cosine.replace(' min ', ' / ')} | {diff} | {row.get('NDCG@10', '-')} | {row.get('Recall@100', '-')} | {timing} |")


if __name__ == "__main__":
    main()
