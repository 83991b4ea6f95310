"""Fine-tune the MiniLM bi-encoder on Home Depot judgments, then score it like search_homedepot.py.

Trains on the "train" part of judgments_dev.csv (HOMEDEPOT_SPLIT; the CLI holds out its own
validation queries from it for early stopping), so that the "valid" queries stay unseen for choosing
fusion settings (search_fusion_sweep.py), and never sees the "test" queries, which
search_homedepot.py reports on. `--parts train,valid` trains on both (stop 5's LoRA row).
Runs the CLI: `shelfwise search finetune`, then the evaluation.

usage: python benchmarks/search_finetune_homedepot.py --method lora [--adversarial none] [--max-steps 300]
                                                      [--target bi-encoder] [--parts train] [--work /tmp/shelfwise-bench]
                                                      [--no-eval] [-- extra finetune args]
       python benchmarks/search_finetune_homedepot.py --target fusion --parts valid --work /tmp/hd -- --model ENCODER_DIR
       python benchmarks/search_finetune_homedepot.py --target synonyms --work /tmp/hd
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "homedepot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="lora")
    parser.add_argument("--adversarial", default="none")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--target", default="bi-encoder", choices=("bi-encoder", "cross-encoder", "fusion", "synonyms"),
                        help="fusion: `search fit-fusion` (pass the encoder after --: -- --model DIR), usually on --parts valid; "
                             "synonyms: `search fit-synonyms`")
    parser.add_argument("--parts", default="train", help="parts of the dev split to train on, comma-separated")
    parser.add_argument("--work", type=Path, default=Path("/tmp/shelfwise-bench"))
    parser.add_argument("--no-eval", action="store_true", help="train only")
    parser.add_argument("--modes", default="semantic,hybrid")
    parser.add_argument("extra", nargs="*", help="more `search finetune` options, after --")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"Home Depot data not found at {DATA}")

    sys.path.insert(0, str(REPO / "benchmarks"))
    from search_homedepot import machine

    from shelfwise.tuning.judgments import HOMEDEPOT_SPLIT, read_judgments, split_by_query

    args.work.mkdir(parents=True, exist_ok=True)
    parts = split_by_query(read_judgments(DATA / "judgments_dev.csv"), HOMEDEPOT_SPLIT)
    names = [p.strip() for p in args.parts.split(",")]
    if "test" in names or not set(names) <= set(parts):
        sys.exit(f"--parts: choose among {sorted(set(parts) - {'test'})} (test is what gets reported)")
    train = pd.concat([parts[n] for n in names], ignore_index=True)
    train_path = args.work / f"judgments_{'+'.join(names)}.csv"
    train.rename(columns={"item_id": "product_id"}).to_csv(train_path, index=False)

    print("machine:", machine())
    print(f"data: {DATA / 'products.csv'}; {'+'.join(names)} queries of judgments_dev.csv: {train['query'].nunique()} queries, {len(train)} judgments")
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    kind = "ce-" if args.target == "cross-encoder" else ""
    if args.target in ("fusion", "synonyms"):
        out = args.work / "models" / f"{args.target}-{'+'.join(names)}"
        cmd = [sys.executable, "-m", "shelfwise.commands.search", f"fit-{args.target}", "--products", str(DATA / "products.csv"),
               "--judgments", str(train_path), "--out", str(out), *args.extra]
    else:
        out = args.work / "models" / f"{kind}{args.method}-{args.adversarial}-{args.max_steps}"
        cmd = [sys.executable, "-m", "shelfwise.commands.search", "finetune", "--products", str(DATA / "products.csv"),
               "--judgments", str(train_path), "--target", args.target, "--method", args.method, "--adversarial", args.adversarial,
               "--max-steps", str(args.max_steps), "--out", str(out), *args.extra]
    env = {**os.environ, "SHELFWISE_HOME": str(args.work / "home"), "HF_HUB_OFFLINE": "1"}
    print("$", " ".join(shlex.quote(c) for c in cmd), flush=True)
    started = time.perf_counter()
    # stdout is the JSON report; stderr (progress bars) goes through to the person watching.
    result = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True)
    report = json.loads(result.stdout)
    print(f"  trained in {time.perf_counter() - started:.0f} s wall ({machine()})")
    print(json.dumps(report, indent=2), flush=True)
    # A fusion or synonyms are scored with search_homedepot.py --run-args "--fusion-model ..." / "--synonyms ...".
    if not args.no_eval and args.target in ("bi-encoder", "cross-encoder"):
        trained = ["--reranker", str(out), "--modes", "hybrid-rerank"] if kind else ["--model", str(out), "--modes", args.modes]
        evaluate = [sys.executable, str(REPO / "benchmarks" / "search_homedepot.py"), *trained, "--work", str(args.work)]
        print("$", " ".join(shlex.quote(c) for c in evaluate), flush=True)
        subprocess.run(evaluate, env=env, check=True)


if __name__ == "__main__":
    main()
