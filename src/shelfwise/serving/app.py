"""Build the FastAPI application for a store."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import shelfwise
from shelfwise.config import Settings
from shelfwise.serving.routers import health, items
from shelfwise.store import Store

STATIC = Path(__file__).resolve().parents[1] / "web" / "static"


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    app = FastAPI(title="shelfwise", version=shelfwise.__version__, description="Search and recommendations for an online shop.")
    app.state.settings = settings
    app.state.store = store or Store.open(settings)
    app.include_router(health.router)
    app.include_router(items.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def storefront() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
