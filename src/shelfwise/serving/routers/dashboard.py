"""What the web pages need from the server: the page config (is this the demo, which key may the
storefront post events with) and the dashboard's data (traffic and latency per endpoint, the
models served, evaluation reports and their files).

Who may see what:

- ``GET /web/config`` is open: in ``serve`` mode it says only that keys are needed; in demo mode
  (reads open, ``require_read_key=False``) it also hands out an events-only key, made for this
  process on first use, so the demo storefront can post its clicks. ``serve`` never hands out keys.
- The dashboard endpoints need an ``admin`` key in ``serve`` mode. In demo mode they are open like
  the other reads (the demo listens on 127.0.0.1 only).

Traffic is read from this process's Prometheus collectors (with ``--workers`` each process
counts its own requests; Prometheus sums them). Reports are listed from ``<home>/artifacts``
and only files below it, of a few report types, are served."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials

from shelfwise.serving.auth import create_key
from shelfwise.serving.deps import AUTH_RESPONSES, admin_access, answers, bearer, read_access
from shelfwise.serving.models import available_models

router = APIRouter(tags=["web"])

DEMO_KEY_NAME = "demo-storefront"
REPORT_FILES = {".html": "text/html", ".json": "application/json", ".png": "image/png", ".svg": "image/svg+xml",
                ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
MAX_REPORT_DEPTH = 4  # <home>/artifacts/<name>/<version>/... is depth 2; benchmark folders nest a little more
MAX_REPORTS = 200
_demo_key_lock = threading.Lock()


async def dashboard_access(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)):
    """Admin scope in ``serve`` mode; in the demo, open like the other reads."""
    if request.app.state.require_read_key:
        return await admin_access(request, credentials)
    return await read_access(request, credentials)


def _demo_events_key(app) -> str:
    """The events-only key of the demo storefront, made once per process (only its hash is stored)."""
    with _demo_key_lock:
        key = getattr(app.state, "demo_events_key", None)
        if key is None:
            _, key = create_key(app.state.store, ["events"], name=DEMO_KEY_NAME)
            app.state.demo_events_key = key
        return key


@router.get("/web/config")
def web_config(request: Request) -> dict:
    """How the pages should call the API: whether reads need a key and, in the demo only, the
    events-only key the storefront posts its clicks with."""
    state = request.app.state
    demo = not state.require_read_key
    info = state.registry.current.info if state.registry.ready else None
    return {
        "mode": "demo" if demo else "serve",
        "reads_need_key": not demo,
        "dashboard_needs_key": not demo,
        "events_key": _demo_events_key(request.app) if demo else None,
        "model": {"name": info.name, "version": info.version} if info else None,
    }


# ---- traffic and latency from the Prometheus collectors ------------------------------------

def _quantile(q: float, bounds: list[float], cumulative: list[float]) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q*n."""
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return None
    rank = q * total
    for i, (bound, count) in enumerate(zip(bounds, cumulative)):
        if count >= rank:
            if math.isinf(bound):
                return bounds[i - 1] if i > 0 else None  # above the last finite bucket: its bound
            lower = bounds[i - 1] if i > 0 else 0.0
            below = cumulative[i - 1] if i > 0 else 0.0
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
    return None


def _histograms(histogram, label_names: tuple[str, ...]) -> dict[tuple, dict]:
    """{label values: {"count", "sum", "bounds", "cumulative"}} from a histogram's samples."""
    out: dict[tuple, dict] = {}
    for family in histogram.collect():
        for sample in family.samples:
            labels = tuple(sample.labels.get(n, "") for n in label_names)
            entry = out.setdefault(labels, {"count": 0.0, "sum": 0.0, "buckets": []})
            if sample.name.endswith("_bucket"):
                entry["buckets"].append((float(sample.labels["le"]), sample.value))
            elif sample.name.endswith("_count"):
                entry["count"] = sample.value
            elif sample.name.endswith("_sum"):
                entry["sum"] = sample.value
    for entry in out.values():
        buckets = sorted(entry.pop("buckets"))
        entry["bounds"] = [bound for bound, _ in buckets]
        entry["cumulative"] = [count for _, count in buckets]
    return out


def _counter_values(counter, label_names: tuple[str, ...]) -> dict[tuple, float]:
    out = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[tuple(sample.labels.get(n, "") for n in label_names)] = sample.value
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _latency_summary(h: dict) -> dict:
    bounds, cumulative = h["bounds"], h["cumulative"]
    return {
        "mean_ms": _ms(h["sum"] / h["count"]) if h["count"] else None,
        "p50_ms": _ms(_quantile(0.50, bounds, cumulative)),
        "p95_ms": _ms(_quantile(0.95, bounds, cumulative)),
        "p99_ms": _ms(_quantile(0.99, bounds, cumulative)),
        # per-bucket (not cumulative) counts, for a histogram chart
        "buckets": [{"le_ms": None if math.isinf(b) else _ms(b), "count": int(c - (cumulative[i - 1] if i else 0))}
                    for i, (b, c) in enumerate(zip(bounds, cumulative))],
    }


def traffic(metrics) -> dict:
    """Requests, statuses, errors and latency quantiles per endpoint, busiest first."""
    latency = _histograms(metrics.latency, ("method", "route"))
    requests = _counter_values(metrics.requests, ("method", "route", "status"))
    errors = _counter_values(metrics.errors, ("method", "route"))
    endpoints = []
    for (method, route), h in latency.items():
        statuses = {status: int(n) for (m, r, status), n in sorted(requests.items()) if (m, r) == (method, route)}
        endpoints.append({"method": method, "route": route, "requests": int(h["count"]), "statuses": statuses,
                          "errors": int(errors.get((method, route), 0)), **_latency_summary(h)})
    endpoints.sort(key=lambda e: (-e["requests"], e["route"], e["method"]))
    writes = _histograms(metrics.event_write, ()).get((), {"count": 0, "sum": 0.0, "bounds": [], "cumulative": []})
    return {
        "totals": {"requests": sum(e["requests"] for e in endpoints), "errors": sum(e["errors"] for e in endpoints),
                   "rate_limited": int(_counter_values(metrics.rate_limited, ()).get((), 0))},
        "endpoints": endpoints,
        "events": {"received": int(_counter_values(metrics.events_received, ()).get((), 0)),
                   "stored": int(_counter_values(metrics.events_stored, ()).get((), 0)),
                   "rejected": int(_counter_values(metrics.events_rejected, ()).get((), 0)),
                   "write_p50_ms": _ms(_quantile(0.5, writes["bounds"], writes["cumulative"])),
                   "write_p99_ms": _ms(_quantile(0.99, writes["bounds"], writes["cumulative"]))},
    }


def _index_sizes(metrics) -> dict[str, int]:
    return {s.labels["index"]: int(s.value) for f in metrics.index_size.collect() for s in f.samples}


def _model_view(info: dict | None, home: Path) -> dict | None:
    """A model's info without the absolute path on disk (relative to the home instead)."""
    if info is None:
        return None
    view = dict(info)
    path = view.pop("path", None)
    if path:
        try:
            view["artifact"] = str(Path(path).resolve().relative_to(home.resolve()))
        except ValueError:
            view["artifact"] = Path(path).name
    return view


@router.get("/dashboard/stats", dependencies=[Depends(dashboard_access)], responses=AUTH_RESPONSES)
def dashboard_stats(request: Request) -> dict:
    """Traffic, errors and latency per endpoint since this process started; the model served,
    the previous one and every artifact version on disk; index sizes."""
    state = request.app.state
    registry = state.registry
    home = state.settings.home
    serving = registry.current.info.to_dict() if registry.ready else None
    previous = registry.previous.info.to_dict() if registry.previous else None
    return {
        "generated_at": time.time(),
        "process": {"pid": os.getpid(), "started_at": state.started_at,
                    "uptime_seconds": round(time.time() - state.started_at, 1)},
        "mode": "serve" if state.require_read_key else "demo",
        **traffic(state.metrics),
        "models": {"serving": _model_view(serving, home), "previous": _model_view(previous, home),
                   "available": available_models(state.settings)},
        "indexes": _index_sizes(state.metrics),
    }


# ---- evaluation reports under <home>/artifacts ----------------------------------------------

def _numeric_tables(metrics: dict) -> dict[str, dict[str, float]]:
    """Top-level entries that are flat {metric: number} dicts (e.g. "valid", "test"), as table rows."""
    tables = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            row = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if row and len(row) == len(value):
                tables[name] = row
    return tables


def _curves(history) -> dict | None:
    """Training history (the training loop's per-epoch records, or per-step records of the
    tuning recipes) as points {x, loss, metric...} for a learning-curve chart."""
    if not isinstance(history, list) or not history or not all(isinstance(h, dict) for h in history):
        return None
    axis = "epoch" if "epoch" in history[0] else "step" if "step" in history[0] else None
    if axis is None:
        return None
    points = []
    for h in history:
        point = {"x": h.get(axis, 0) + (1 if axis == "epoch" else 0)}
        flat = {**{k: v for k, v in h.items() if k != "metrics"}, **(h.get("metrics") or {})}
        for k, v in flat.items():
            if k not in (axis, "lr", "train_seconds", "eval_seconds") and isinstance(v, (int, float)) and not isinstance(v, bool):
                point[k] = v
        points.append(point)
    return {"x": axis, "points": points}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _report(folder: Path, root: Path, latest_of: dict[str, str]) -> dict:
    relative = folder.relative_to(root).as_posix()
    metrics = _read_json(folder / "metrics.json") if (folder / "metrics.json").is_file() else None
    history = _read_json(folder / "history.json") if (folder / "history.json").is_file() else None
    if history is None and isinstance(metrics, dict):
        history = metrics.get("history")
    files = [{"name": p.name, "url": f"/dashboard/files/{relative}/{p.name}", "kind": p.suffix.lstrip("."),
              "bytes": p.stat().st_size}
             for p in sorted(folder.iterdir())
             if p.is_file() and not p.is_symlink() and p.suffix.lower() in REPORT_FILES and not p.name.startswith(".")]
    parts = relative.split("/")
    return {
        "path": relative, "name": parts[0], "version": parts[-1] if len(parts) > 1 else None,
        "latest": len(parts) == 2 and latest_of.get(parts[0]) == parts[1],
        "modified": max((folder / f["name"]).stat().st_mtime for f in files) if files else folder.stat().st_mtime,
        "tables": _numeric_tables(metrics) if isinstance(metrics, dict) else {},
        "curves": _curves(history),
        "files": files,
    }


def find_reports(root: Path) -> list[dict]:
    """Folders under ``root`` holding a metrics.json or a report.html, newest first; symlinks
    and hidden folders (unfinished artifacts) are skipped."""
    if not root.is_dir():
        return []
    latest_of = {p.name: (p / "latest").read_text().strip() for p in root.iterdir() if (p / "latest").is_file()}
    found, queue = [], [(root, 0)]
    while queue and len(found) < MAX_REPORTS:
        folder, depth = queue.pop()
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue
        if folder != root and any(c.name in ("metrics.json", "report.html") for c in children):
            found.append(_report(folder, root, latest_of))
        if depth < MAX_REPORT_DEPTH:
            queue.extend((c, depth + 1) for c in children if c.is_dir() and not c.is_symlink() and not c.name.startswith("."))
    found.sort(key=lambda r: -r["modified"])
    return found


@router.get("/dashboard/reports", dependencies=[Depends(dashboard_access)], responses=AUTH_RESPONSES)
def dashboard_reports(request: Request) -> dict:
    """Evaluation reports and model metrics found under ``<home>/artifacts``, newest first: metric
    tables, learning curves and links to their files (report.html, plots, metrics.json)."""
    return {"reports": find_reports(request.app.state.settings.artifacts)}


def safe_report_file(root: Path, relative: str) -> Path:
    """The file ``relative`` below ``root``, or 404: no traversal out of the root (also through
    symlinks), no hidden files, only report file types."""
    root = root.resolve()
    parts = Path(relative).parts
    if not parts or any(p in ("", ".", "..") or p.startswith(".") for p in parts) or Path(relative).is_absolute():
        raise HTTPException(404, "no such report file")
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file() or path.suffix.lower() not in REPORT_FILES:
        raise HTTPException(404, "no such report file")
    return path


@router.get("/dashboard/files/{relative:path}", dependencies=[Depends(dashboard_access)], responses={**AUTH_RESPONSES, **answers(e404="no such report file")})
def dashboard_file(relative: str, request: Request) -> FileResponse:
    """A report file below ``<home>/artifacts``. Served sandboxed: an HTML report or SVG plot runs
    no script with this site's origin."""
    path = safe_report_file(request.app.state.settings.artifacts, relative)
    return FileResponse(path, media_type=REPORT_FILES[path.suffix.lower()],
                        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff",
                                 "Cache-Control": "no-store"})
