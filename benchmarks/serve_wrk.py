"""Serving throughput and latency with wrk (a Debian package) against the demo shop.

Starts `shelfwise serve` on the demo shop (prepared in HOME if it is not there yet), then runs
wrk for each scenario: 16 connections, 60 s by default, paths rotating over the shop's users
and its shoppers' real search queries so that no answer is one cached URL.

  recommendations  GET /recommendations/{user}       target p99 <= 20 ms, >= 800 req/s
  search           GET /search?q=...&mode=hybrid       target p99 <= 40 ms, >= 400 req/s
  search-unseen    the same with never-seen queries (each pays the encoder; no target of its own)
  events           POST /events, 20 events a request   target >= 2,000 events/s, none lost

usage: python benchmarks/serve_wrk.py [--home DIR] [--workers 2] [--seconds 60]
                                      [--connections 16] [--only recommendations,search,search-unseen,events]
                                      [--event-batch 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common import header

LATENCY_LINE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}

ROTATING_GET = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Authorization"] = "Bearer %(key)s"})
end
"""

# Never-seen queries: a past query plus a catalogue word, a new pair on every request, so that
# no cache answers and every request pays the query encoder.
UNSEEN_QUERIES = """
local queries = {%(queries)s}
local words = {%(words)s}
local i = 0
local next_thread = 0
setup = function(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end
request = function()
  i = i + 1
  if i == 1 then i = thread_id * 1000000 end  -- each thread its own stretch of pairs
  local q = queries[(i %% #queries) + 1] .. "+" .. words[(math.floor(i / #queries) %% #words) + 1]
  return wrk.format("GET", "/search?mode=hybrid&per_page=10&q=" .. q, {["Authorization"] = "Bearer %(key)s"})
end
"""

# Every request posts a batch of events (a tracker sends them in batches) with ids unique across threads, so stored events can be
# counted back exactly.
POSTING_EVENTS = """
local items = {%(items)s}
local counter = 0
local next_thread = 0
-- thread:set gives each thread's own Lua state a global thread_id (a local here would shadow it).
setup = function(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end
request = function()
  local events = {}
  for j = 1, %(batch)d do
    counter = counter + 1
    local item = items[(counter %% #items) + 1]
    events[j] = string.format('{"event_id":"wrk-%(run)s-%%d-%%d","session_id":"wrk-%%d-%%d","item_id":"%%s","type":"view","ts":%%d}',
      thread_id, counter, thread_id, counter %% 500, item, 1719835200 + counter)
  end
  local body = '{"events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "/events", {["Authorization"] = "Bearer %(key)s", ["Content-Type"] = "application/json"}, body)
end
"""


def lua_list(values: list[str]) -> str:
    return ",".join(json.dumps(v) for v in values)


def run_wrk(url: str, script: str, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, url],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    latency = {f"p{p}_ms": round(float(v) * UNITS_MS[u], 2) for p, v, u in LATENCY_LINE.findall(out)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        **latency,
        "requests": requests,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "none",
    }


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SHELFWISE_RATE_LIMIT": "1000000", "SHELFWISE_RATE_BURST": "1000000"}
    command = [sys.executable, "-m", "shelfwise.cli", "--home", str(home), "--quiet", "serve",
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(client: httpx.Client, process: subprocess.Popen) -> None:
    """Until the model is loaded, the semantic index built and the past queries encoded: the
    background work of a fresh start would otherwise compete with the measured requests."""
    deadline = time.time() + 600  # the first start encodes the catalogue for semantic search
    while time.time() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            ready = client.get("/readyz").json()
            # Search: the semantic index is built and the shop's past queries are encoded.
            searching = ready.get("search", {})
            if ready.get("status") == "ready" and searching.get("past_queries", "").endswith("encoded"):
                return
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError("the server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("shelfwise-home-bench"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--only", default="recommendations,search,search-unseen,events")
    parser.add_argument("--event-batch", type=int, default=20, help="events per POST /events request")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    from shelfwise.commands.demo import prepare_demo
    from shelfwise.config import Settings
    from shelfwise.serving.auth import create_key
    from shelfwise.store import Store

    settings = Settings(home=args.home, quiet=True)
    prepare_demo(settings, n_items=5_000, n_users=2_000, n_events=150_000, seed=0)
    store = Store.open(settings)
    _, read_key = create_key(store, ["read"], name="wrk read")
    _, events_key = create_key(store, ["events"], name="wrk events")
    users = store.read_frame("SELECT user_id FROM users ORDER BY user_id LIMIT 1000")["user_id"].tolist()
    queries = store.read_frame("SELECT DISTINCT query FROM events WHERE type = 'search' AND query IS NOT NULL LIMIT 500")["query"].tolist()
    item_ids = store.read_frame("SELECT item_id FROM items ORDER BY item_id LIMIT 2000")["item_id"].tolist()
    scenarios = args.only.split(",")
    print(header(f"demo shop (5,000 items, 2,000 users, 150,000 events) in {args.home}; "
                 f"{len(users)} users, {len(queries)} distinct search queries rotated"))
    print(f"server: shelfwise serve --workers {args.workers}; wrk -t2 -c{args.connections} -d{args.seconds}s")

    url = f"http://127.0.0.1:{args.port}"
    server = start_server(args.home, args.port, args.workers)
    results = {}
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_ready(client, server)
            # Warm every worker (first requests load lazily built state).
            for q in queries[:50]:
                client.get("/search", params={"q": q}, headers={"Authorization": f"Bearer {read_key}"})
            if "recommendations" in scenarios:
                paths = [f"/recommendations/{u}?k=10" for u in users]
                results["recommendations"] = run_wrk(url, ROTATING_GET % {"paths": lua_list(paths), "key": read_key}, args.seconds, args.connections)
            if "search" in scenarios:
                paths = [str(httpx.URL("/search", params={"q": q, "mode": "hybrid", "per_page": 10})) for q in queries]
                results["search"] = run_wrk(url, ROTATING_GET % {"paths": lua_list(paths), "key": read_key}, args.seconds, args.connections)
            if "search-unseen" in scenarios:
                from urllib.parse import quote_plus

                titles = store.read_frame("SELECT title FROM items ORDER BY item_id LIMIT 2000")["title"]
                words = sorted({w.lower() for t in titles for w in t.split() if w.isalpha() and len(w) > 3})[:300]
                script = UNSEEN_QUERIES % {"queries": lua_list([quote_plus(q) for q in queries]), "words": lua_list(words), "key": read_key}
                results["search-unseen"] = run_wrk(url, script, args.seconds, args.connections)
            if "events" in scenarios:
                before = store.counts()["events"]
                # A run id in every event id: a second run on the same home must not meet its ids again.
                script = POSTING_EVENTS % {"items": lua_list(item_ids), "key": events_key, "batch": args.event_batch,
                                           "run": f"{time.time():.0f}"}
                outcome = run_wrk(url, script, args.seconds, args.connections)
                time.sleep(1)
                stored = store.counts()["events"] - before
                sent = (outcome["requests"] - outcome["non_2xx"]) * args.event_batch
                outcome.update(events_sent_ok=sent, events_stored=stored, events_per_s=round(stored / args.seconds))
                results["events"] = outcome
    finally:
        server.terminate()
        server.wait(timeout=30)
        store.close()
    for name, r in results.items():
        print(f"{name:16s} " + "  ".join(f"{k}={v}" for k, v in r.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
