"""Figure for docs/benchmarks.md from `bench sequential` runs: validation NDCG@10 per epoch, and
test NDCG@10 / HR@10 per run beside reference numbers (peers measured elsewhere).

    .venv/bin/python benchmarks/plot_sequential.py --run "SASRec + transitions=runs/beauty/metrics.json" \\
        --run "transitions=runs/beauty-transitions/metrics.json" \\
        --reference "RecBole SASRec=0.0557,0.0916" --out docs/img/beauty.svg
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def labelled(text: str) -> tuple[str, str]:
    label, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LABEL=VALUE, got {text!r}")
    return label, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=labelled, action="append", required=True, help="LABEL=path/to/metrics.json (repeatable)")
    parser.add_argument("--reference", type=labelled, action="append", default=[], help="LABEL=NDCG@10,HR@10 (repeatable)")
    parser.add_argument("--title", default="Amazon Beauty, leave-one-out, full ranking")
    parser.add_argument("--out", type=Path, required=True, help=".svg or .png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(label, json.loads(Path(path).read_text())) for label, path in args.run]
    bars = [(label, m["test"]["ndcg@10"], m["test"]["hr@10"]) for label, m in runs]
    bars += [(label, *map(float, value.split(","))) for label, value in args.reference]

    fig, (curves, scores) = plt.subplots(1, 2, figsize=(11, 3.8))
    for label, m in runs:
        history = m.get("history") or []
        if history:
            curves.plot([h["epoch"] + 1 for h in history], [h["metrics"].get("ndcg@10") for h in history], marker=".", label=label)
    curves.set(xlabel="epoch", ylabel="validation NDCG@10", title="Validation NDCG@10 per epoch (network alone)")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=8)

    positions = range(len(bars))
    width = 0.4
    scores.bar([p - width / 2 for p in positions], [b[1] for b in bars], width, label="NDCG@10")
    scores.bar([p + width / 2 for p in positions], [b[2] for b in bars], width, label="HR@10")
    for p, (_, ndcg, hr) in zip(positions, bars):
        scores.annotate(f"{ndcg:.4f}", (p - width / 2, ndcg), ha="center", va="bottom", fontsize=7)
        scores.annotate(f"{hr:.4f}", (p + width / 2, hr), ha="center", va="bottom", fontsize=7)
    scores.set_xticks(list(positions), [b[0] for b in bars], rotation=20, ha="right", fontsize=8)
    scores.set(ylabel="test", title=args.title)
    scores.grid(axis="y", alpha=0.3)
    scores.legend(fontsize=8, loc="lower right")  # the value labels sit on top of the bars
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
