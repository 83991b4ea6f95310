"""Next-item benchmark behind docs/benchmarks-sequential.md.

For each data file: train the model with its defaults (`shelfwise bench sequential`), then
re-score the written test lists with the shared scorer, and print the machine, the data, the
command, the load and both sets of numbers.

    .venv/bin/python benchmarks/sequential.py                      # sasrec on Beauty and Video
    .venv/bin/python benchmarks/sequential.py --model gru4rec --data ../shared/data/amazon_beauty/Beauty.txt
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see commands/recommend.py

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = [SHARED / "data" / "amazon_beauty" / "Beauty.txt", SHARED / "data" / "amazon_video" / "Video.txt"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="per-user sequence file (repeatable)")
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--out", type=Path, default=Path("/tmp/shelfwise-bench/sequential"))
    parser.add_argument("--set", dest="settings", action="append", default=[], help="SECTION.KEY=VALUE override")
    args = parser.parse_args()
    from shelfwise.commands.recommend import _parse_overrides, run_sequential_benchmark

    for data in args.data or DEFAULT_DATA:
        if not data.exists():
            print(f"skip {data}: not found")
            continue
        out = args.out / f"{args.model}-{data.stem.lower()}"
        command = ["shelfwise", "bench", "sequential", "--data", str(data), "--model", args.model, "--out", str(out)]
        command += [x for s in args.settings for x in ("--set", s)]
        print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"python {platform.python_version()}; load average {os.getloadavg()}")
        print(f"data: {data}\ncommand: {' '.join(command)}", flush=True)
        m = run_sequential_benchmark(data, args.model, out, _parse_overrides(tuple(args.settings)))
        if not m:  # a torchrun worker other than rank 0: rank 0 reports
            continue
        print(json.dumps({k: m[k] for k in ("epochs", "best_epoch", "seconds_per_epoch", "eval_seconds_per_epoch",
                                            "total_seconds", "peak_memory_mb")}))
        print("ours:   " + " ".join(f"{k}={m['test'][k]:.4f}" for k in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr@10", "coverage@10")))
        scorer = SHARED / "eval" / "seq_score.py"
        if scorer.exists():
            scored = subprocess.run([sys.executable, str(scorer), str(data), str(out / "test_top100.tsv")],
                                    capture_output=True, text=True, check=True).stdout.strip()
            print("scorer: " + scored)
        print(f"load average at the end {os.getloadavg()}\n", flush=True)


if __name__ == "__main__":
    main()
