"""Text <-> image alignment and item fusion on the fashion photos (the numbers in
docs/benchmarks.md, "Multimodal"). The same run as ``shelfwise bench multimodal``, with the machine
header every benchmark prints:

    python benchmarks/multimodal.py --data ../shared/data/fashion --out runs/multimodal [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/fashion")
    parser.add_argument("--out", default="runs/multimodal")
    parser.add_argument("--cache", help="encoder outputs, reused across runs (default OUT/cache)")
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--extra-names", type=int, default=20000)
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--tune-image", action="store_true", help="also fine-tune the image backbone's last blocks (a variant chosen on validation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from shelfwise.multimodal.benchmark import BenchConfig, run

    print(header(args.data), flush=True)
    config = BenchConfig(test_size=args.test_size, extra_texts=args.extra_names, ablations=not args.no_ablations,
                         tune_image=args.tune_image, seed=args.seed)
    started = time.time()
    results = run(args.data, args.out, config, cache_dir=args.cache, progress=False, log=lambda m: print(m, flush=True))
    print(json.dumps({k: results[k] for k in ("alignment", "fusion", "fusion_selected", "throughput", "artifact")}, indent=2, default=float))
    print(f"{time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
