"""Session-based recommendation on Diginetica and Tmall (docs/benchmarks.md, "Session-based recommendation").

Runs `shelfwise bench sessions` for each model and folder, printing the machine, the data, the
command, the load and HR@20 / MRR@20 over all items for every test prefix.

    .venv/bin/python benchmarks/sessions.py                                   # transitions and gru4rec (4 epochs) on both
    .venv/bin/python benchmarks/sessions.py --model sasrec --data ../shared/data/sessions/diginetica
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see commands/recommend.py

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = ROOT.parent / "shared" / "data" / "sessions"
# The neural settings behind the numbers in docs/benchmarks.md: 4 epochs of sampled softmax (1,024 shared
# negatives) fit the 10-minute budget on one shared core (~2 min per Diginetica epoch); a full-softmax step over
# 43k items was ~7x slower there (one batch of 128 sessions: 2.0 s against 0.28 s with 2,048 negatives).
NEURAL = ["--set", "loss.name=sampled", "--set", "loss.n_negatives=1024", "--set", "train.batch_size=256"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append")
    parser.add_argument("--model", dest="models", action="append")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", default="4", help="epochs of the neural models (capped for the time budget)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/shelfwise-bench/sessions"))
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}", flush=True)
    for data in args.data or [SESSIONS / "diginetica", SESSIONS / "tmall"]:
        for model in args.models or ["transitions", "gru4rec"]:
            out = args.out / f"{data.name}-{model}"
            command = ["shelfwise", "-q", "bench", "sessions", "--data", str(data), "--model", model, "--threads", str(args.threads),
                       "--out", str(out)] + ([] if model in ("transitions", "popularity") else ["--epochs", args.epochs, *NEURAL])
            print(f"\ndata: {data}\ncommand: {' '.join(command)}\nload average at start {os.getloadavg()}", flush=True)
            t0 = time.time()
            subprocess.run([str(Path(sys.executable).parent / "shelfwise"), *command[1:]], check=True)
            m = json.loads((out / "metrics.json").read_text())
            print(f"HR@20 {m['test']['hr@20']:.4f} MRR@20 {m['test']['mrr@20']:.4f}; epochs {m['epochs']} (best {m['best_epoch']}), "
                  f"{m['seconds_per_epoch']:.0f} s/epoch; wall {time.time() - t0:.0f} s; load average at end {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
