"""Build the FastAPI application for a store: a router per capability; the store, the model
registry, API keys, the rate limiter and metrics as app state injected into the routers."""

from __future__ import annotations

import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import shelfwise
from shelfwise.config import Settings
from shelfwise.serving import errors
from shelfwise.serving.auth import KeyCache
from shelfwise.serving.event_writer import EventWriter
from shelfwise.serving.history import HistoryReader
from shelfwise.serving.metrics import Metrics
from shelfwise.serving.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from shelfwise.serving.models import ModelRegistry
from shelfwise.serving.ratelimit import make_limiter
from shelfwise.serving.routers import admin, dashboard, events, health, items, metrics, recommendations, search, users
from shelfwise.serving.search_service import SearchService
from shelfwise.store import Store

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"

DESCRIPTION = """Search and recommendations for an online shop.

Send an API key as `Authorization: Bearer KEY` (make one with `shelfwise keys create --scope SCOPE`).
Scopes: `read` (recommendations, catalogue, users), `events` (POST /events), `admin` (/admin/*, and
everything else). Each key has a rate limit; over it the answer is 429 with `Retry-After`."""


def create_app(settings: Settings, store: Store | None = None, require_read_key: bool = True,
               registry: ModelRegistry | None = None, search_semantic: bool | None = None) -> FastAPI:
    """The API for ``settings``' store. ``require_read_key=False`` lets reads through without a
    key (the demo); writes and administration always need one. The model is loaded here, so
    the first request is served by a ready model; pass ``registry`` to share a loaded one.
    ``search_semantic=False`` serves keyword search only (default: env SHELFWISE_SEARCH_SEMANTIC,
    on unless "0"); the semantic index builds in the background once the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.search.start()  # semantic and photo indexes build in the background
        yield
        app.state.search.close()
        app.state.event_writer.close()  # stores what is queued before the process ends
        await app.state.limiter.close()

    app = FastAPI(title="shelfwise", version=shelfwise.__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.started_at = time.time()
    app.state.store = store = store or Store.open(settings)
    app.state.require_read_key = require_read_key
    app.state.metrics = app_metrics = Metrics() if registry is None else registry.metrics
    app.state.keys = KeyCache(store)
    app.state.history = HistoryReader(store, settings.pii_salt)
    app.state.event_writer = EventWriter(store)
    app.state.limiter = make_limiter(settings.redis_url, settings.rate_limit, settings.rate_burst)
    if registry is None:
        registry = ModelRegistry(settings, store, app_metrics)
        registry.load()
    app.state.registry = registry
    app.state.search = SearchService(settings, store, semantic=search_semantic, metrics=app_metrics)

    for module in (health, metrics, items, recommendations, search, users, events, admin, dashboard):
        app.include_router(module.router)
    errors.install(app)
    # Added last = outermost: metrics also count the 413s of the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=app_metrics)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def storefront() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_page() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html")

    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` (one per worker process): settings from ``SHELFWISE_*``,
    reads open without a key only if ``SHELFWISE_REQUIRE_READ_KEY=0``."""
    from shelfwise.config import settings
    from shelfwise.serving.logging import setup_logging

    config = settings(quiet=os.environ.get("SHELFWISE_QUIET") == "1")
    setup_logging("WARNING" if config.quiet else "INFO")
    return create_app(config, require_read_key=os.environ.get("SHELFWISE_REQUIRE_READ_KEY", "1") != "0")
