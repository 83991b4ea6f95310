"""Reranker runtimes side by side: latency of reranking 20 (query, title) pairs for one query
(torch at 2 and 1 threads, ONNX fp32 and int8 at 2 and 1 threads; p50 / p99 / mean over 50 dev
queries, each query's judged products topped up with random titles to 20) and agreement of the ONNX
logits with torch's (Spearman over 200 dev pairs; within each query's 20).

usage: python benchmarks/rerank_latency.py CROSS_ENCODER_DIR EXPORT_DIR   (CROSS_ENCODER_DIR "-": untrained head)
The export is written to EXPORT_DIR (fp32 + int8) unless it is already there.
"""
import os, sys, time, json
import numpy as np, pandas as pd, torch
from scipy.stats import spearmanr
from shelfwise.search.rerank import Reranker, OnnxReranker, export_reranker
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "homedepot"

model = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
out = sys.argv[2]
torch.set_num_threads(2)
products = pd.read_csv(str(DATA / "products.csv"), dtype={"product_id": str})
titles = dict(zip(products.product_id, products.title))
judg = pd.read_csv(str(DATA / "judgments_dev.csv"), dtype={"product_id": str})
rng = np.random.default_rng(0)
queries = list(dict.fromkeys(judg["query"]))
rng.shuffle(queries)
by_q = judg.groupby("query")["product_id"].apply(list)
all_titles = products.title.tolist()
cases = []
for q in queries[:50]:
    t = [titles[p] for p in by_q[q] if p in titles][:20]
    t += [all_titles[i] for i in rng.choice(len(all_titles), 20 - len(t), replace=False)]
    cases.append((q, t))

if model:
    reranker = Reranker.from_artifact(model)
else:
    torch.manual_seed(0); reranker = Reranker()
if not os.path.exists(os.path.join(out, "model.int8.onnx")):
    t0 = time.time(); export_reranker(reranker if model is None else model, out, int8=True); print(f"export {time.time()-t0:.1f}s", file=sys.stderr)
class Torch1:
    """The same torch reranker at 1 thread."""
    def score(self, q, t):
        torch.set_num_threads(1)
        try: return reranker.score(q, t)
        finally: torch.set_num_threads(2)
runtimes = {"torch (2 threads)": reranker, "torch (1 thread)": Torch1(), "onnx fp32": OnnxReranker(out, int8=False), "onnx int8": OnnxReranker(out, int8=True),
            "onnx fp32 (1 thread)": OnnxReranker(out, int8=False, threads=1), "onnx int8 (1 thread)": OnnxReranker(out, int8=True, threads=1)}
times = {k: [] for k in runtimes}
for r in runtimes.values():  # warm-up
    for q, t in cases[:3]: r.score(q, t)
for q, t in cases:
    for name, r in runtimes.items():
        t0 = time.perf_counter(); r.score(q, t); times[name].append(1000 * (time.perf_counter() - t0))
res = {k: {"p50_ms": round(float(np.percentile(v, 50)), 1), "p99_ms": round(float(np.percentile(v, 99)), 1), "mean_ms": round(float(np.mean(v)), 1)} for k, v in times.items()}
tok = [len(reranker.tokenizer(q, x, truncation="only_second", max_length=reranker.max_length)["input_ids"]) for q, t in cases for x in t]
res["pair_tokens_mean"] = round(float(np.mean(tok)), 1); res["max_length"] = reranker.max_length
res["model"] = model or "untrained head (seed 0)"; res["loadavg"] = os.getloadavg()
# Agreement over 200 (query, title) pairs of judgments_dev.
sample = judg[judg.product_id.isin(titles)].sample(200, random_state=0)
qs, ts = sample["query"].tolist(), [titles[p] for p in sample.product_id]
ref = np.concatenate([reranker.score(q, [t]) for q, t in zip(qs, ts)])
for name in ("onnx fp32", "onnx int8"):
    got = np.concatenate([runtimes[name].score(q, [t]) for q, t in zip(qs, ts)])
    res[f"{name} vs torch, 200 pairs"] = {"spearman": round(float(spearmanr(ref, got).correlation), 4), "max_abs_diff": float(np.abs(ref - got).max())}
# Same per query of 20 (the rerank unit): mean Spearman and top-1 agreement, int8 vs torch.
sp, top1 = [], []
for q, t in cases:
    a, b = reranker.score(q, t), runtimes["onnx int8"].score(q, t)
    sp.append(spearmanr(a, b).correlation); top1.append(int(np.argmax(a) == np.argmax(b)))
res["int8 vs torch per query of 20"] = {"mean_spearman": round(float(np.mean(sp)), 4), "top1_agreement": float(np.mean(top1))}
print(json.dumps(res, indent=2))
