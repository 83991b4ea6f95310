"""Text-aware items on Amazon Industrial & Scientific (docs/benchmarks.md, "Text-aware items").

SASRec with ID-only, text-only and text+ID item vectors (`shelfwise bench sequential --format
recbole-text --item-repr ...`), once on the standard split and once with a seeded share of the items
removed from training (`--cold-items`), then the shared scorer on the written test lists. Prints the
machine, the data, each command, the load, and overall / warm / cold numbers.

    .venv/bin/python benchmarks/text_aware.py                       # 3 variants x {all items, 10% cold}
    .venv/bin/python benchmarks/text_aware.py --repr text+id --cold-items 0.1 --set model.id_dropout=0.3
    .venv/bin/python benchmarks/text_aware.py --repr text --repr text+id --item-text lora   # MiniLM adapted with LoRA first
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see commands/recommend.py

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "amazon_scientific")
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--repr", dest="reprs", action="append", choices=["id", "text", "text+id"])
    parser.add_argument("--cold-items", dest="colds", type=float, action="append")
    parser.add_argument("--set", dest="settings", action="append", default=[], help="SECTION.KEY=VALUE, e.g. model.id_dropout=0.3")
    parser.add_argument("--item-text", default="frozen", choices=["frozen", "lora"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/shelfwise-bench/text-aware"))
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}\ndata: {args.data}", flush=True)
    rows = []
    for cold in args.colds or [0.0, 0.1]:
        for item_repr in args.reprs or ["id", "text", "text+id"]:
            out = args.out / "-".join([args.model, item_repr, f"cold{cold}", *(["lora"] if args.item_text == "lora" else []), *args.settings])
            command = ["shelfwise", "-q", "bench", "sequential", "--data", str(args.data), "--format", "recbole-text", "--model",
                       args.model, "--item-repr", item_repr, "--cold-items", str(cold), "--threads", str(args.threads), "--out", str(out)]
            command += [x for setting in args.settings for x in ("--set", setting)]
            if item_repr != "id":
                command += ["--item-text", args.item_text]
            print(f"\ncommand: {' '.join(command)}\nload average at start {os.getloadavg()}", flush=True)
            t0 = time.time()
            subprocess.run([str(Path(sys.executable).parent / "shelfwise"), *command[1:]], check=True)
            scored = subprocess.run([sys.executable, str(SHARED / "eval" / "seq_score.py"), str(out / "test_sequences.txt"),
                                     str(out / "test_top100.tsv")], capture_output=True, text=True, check=True).stdout.strip()
            print(f"scorer: {scored}\nwall {time.time() - t0:.0f} s; load average at end {os.getloadavg()}", flush=True)
            import json

            m = json.loads((out / "metrics.json").read_text())
            rows.append((item_repr, cold, m))
    print("\n| item_repr | cold items | HR@10 | NDCG@10 | warm HR@10 | cold cases | cold HR@10 | random HR@10 | epochs (best) |")
    for item_repr, cold, m in rows:
        t, w, c = m["test"], m["test_warm"], m["test_cold"]
        print(f"| {item_repr} | {cold:.0%} | {t['hr@10']:.4f} | {t['ndcg@10']:.4f} | {w['hr@10']:.4f} | {c['cases']} | "
              f"{c['hr@10']:.4f} | {c['random_hr@10']:.4f} | {m['epochs']} ({m['best_epoch']}) |")


if __name__ == "__main__":
    main()
