"""Ingestion throughput: events from CSV into a fresh SQLite store (target: >= 50,000 events/s).

usage: python benchmarks/ingest_events.py [--events N] [--items N] [--db URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import header
from shelfwise.config import Settings
from shelfwise.ingest import ingest_file
from shelfwise.store import Store


def write_files(folder: Path, n_events: int, n_items: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    item_ids = np.char.add("I", np.arange(n_items).astype(str))
    pd.DataFrame({"item_id": item_ids, "title": np.char.add("Product ", item_ids), "price": rng.uniform(1, 200, n_items).round(2)}).to_csv(
        folder / "items.csv", index=False
    )
    types = np.array(["view", "click", "add_to_cart", "purchase"])
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, 90 * 86400, n_events)), unit="s")
    pd.DataFrame(
        {
            "event_id": np.char.add("e", np.arange(n_events).astype(str)),
            "user_id": np.char.add("U", rng.integers(0, n_events // 50 + 1, n_events).astype(str)),
            "session_id": np.char.add("S", rng.integers(0, n_events // 8 + 1, n_events).astype(str)),
            "item_id": item_ids[rng.integers(0, n_items, n_events)],
            "type": types[rng.choice(4, n_events, p=[0.7, 0.2, 0.07, 0.03])],
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    ).to_csv(folder / "events.csv", index=False)
    return folder / "items.csv", folder / "events.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        items_csv, events_csv = write_files(folder, args.events, args.items)
        print(header(f"synthetic CSV, {args.events:,} events ({events_csv.stat().st_size / 1e6:.0f} MB) over {args.items:,} items"))
        store = Store.open(args.db or Settings(home=folder / "home"))
        ingest_file(store, "items", items_csv)
        start, cpu_start = time.perf_counter(), time.process_time()
        report = ingest_file(store, "events", events_csv)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        assert store.counts()["events"] == report.stored == args.events, report
        print(f"backend: {store.dialect}")
        print(report.summary().replace(str(events_csv), "events.csv"))
        print(f"ingest events: {seconds:.1f} s, {args.events / seconds:,.0f} events/s")
        # On a busy machine wall time overstates the cost; CPU time shows what a quiet one gives.
        print(f"CPU time of this process: {cpu_seconds:.1f} s ({args.events / cpu_seconds:,.0f} events per CPU second)")


if __name__ == "__main__":
    main()
