"""Build the FastAPI application for a store: a router per capability; the store, the model
registry, API keys, the rate limiter and metrics as app state injected into the routers."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import shelfwise
from shelfwise.config import Settings
from shelfwise.serving.auth import KeyCache
from shelfwise.serving.event_writer import EventWriter
from shelfwise.serving.history import HistoryReader
from shelfwise.serving.metrics import Metrics
from shelfwise.serving.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from shelfwise.serving.models import ModelRegistry
from shelfwise.serving.ratelimit import make_limiter
from shelfwise.serving.routers import admin, events, health, items, metrics, recommendations, users
from shelfwise.store import Store

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"

DESCRIPTION = """Search and recommendations for an online shop.

Send an API key as `Authorization: Bearer KEY` (make one with `shelfwise keys create --scope SCOPE`).
Scopes: `read` (recommendations, catalogue, users), `events` (POST /events), `admin` (/admin/*, and
everything else). Each key has a rate limit; over it the answer is 429 with `Retry-After`."""


def create_app(settings: Settings, store: Store | None = None, require_read_key: bool = True,
               registry: ModelRegistry | None = None) -> FastAPI:
    """The API for ``settings``' store. ``require_read_key=False`` lets reads through without a
    key (the demo); writes and administration always need one. The model is loaded here, so
    the first request is served by a ready model; pass ``registry`` to share a loaded one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.event_writer.close()  # stores what is queued before the process ends
        await app.state.limiter.close()

    app = FastAPI(title="shelfwise", version=shelfwise.__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store = store or Store.open(settings)
    app.state.require_read_key = require_read_key
    app.state.metrics = app_metrics = Metrics() if registry is None else registry.metrics
    app.state.keys = KeyCache(store)
    app.state.history = HistoryReader(store)
    app.state.event_writer = EventWriter(store)
    app.state.limiter = make_limiter(settings.redis_url, settings.rate_limit, settings.rate_burst)
    if registry is None:
        registry = ModelRegistry(settings, store, app_metrics)
        registry.load()
    app.state.registry = registry

    for module in (health, metrics, items, recommendations, users, events, admin):
        app.include_router(module.router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Added last = outermost: metrics also count the 413s of the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=app_metrics)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def storefront() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (one per worker process): settings from ``SHELFWISE_*``,
    reads open without a key only if ``SHELFWISE_REQUIRE_READ_KEY=0``."""
    from shelfwise.config import settings
    from shelfwise.serving.logging import setup_logging

    config = settings(quiet=os.environ.get("SHELFWISE_QUIET") == "1")
    setup_logging("WARNING" if config.quiet else "INFO")
    return create_app(config, require_read_key=os.environ.get("SHELFWISE_REQUIRE_READ_KEY", "1") != "0")


def _where(loc: tuple) -> str:
    """('body', 'events', 2, 'ts') -> 'events[2].ts'."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or "body"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable line per problem (field path: message), no echo of the input."""
    problems = [{"field": _where(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in exc.errors()]
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    if len(problems) > 5:
        summary += f"; and {len(problems) - 5} more"
    return JSONResponse({"detail": summary, "errors": problems[:100]}, status_code=422)
