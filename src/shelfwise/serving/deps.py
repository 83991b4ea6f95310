"""Dependencies injected into the routers: the store, the model being served, and the API key
check (scope + rate limit) that guards every endpoint that needs one."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from shelfwise.config import Settings
from shelfwise.serving.auth import ApiKey
from shelfwise.serving.history import HistoryReader
from shelfwise.serving.models import ModelRegistry
from shelfwise.serving.recommend import RecommenderService
from shelfwise.serving.search_service import SearchService
from shelfwise.store import Store

# The getters are ``async`` although they never wait: FastAPI would run plain functions in its
# thread pool, one hop per dependency per request.
bearer = HTTPBearer(auto_error=False, description="An API key from `shelfwise keys create --scope SCOPE`.")


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_history(request: Request) -> HistoryReader:
    return request.app.state.history


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def get_search(request: Request) -> SearchService:
    return request.app.state.search


async def get_service(request: Request) -> RecommenderService:
    registry: ModelRegistry = request.app.state.registry
    if not registry.ready:
        raise HTTPException(503, "no model loaded yet")
    return registry.current


@dataclass(frozen=True)
class Recommending:
    """What a recommendation needs, as one dependency: FastAPI solves each ``Depends`` on every
    request, and several of them cost more than a cached answer."""

    service: RecommenderService
    histories: HistoryReader


async def get_recommending(request: Request) -> Recommending:
    return Recommending(await get_service(request), request.app.state.history)


def require(scope: str):
    """A dependency that admits a request only with a key granting ``scope`` (reads may go
    without a key when the app was made with ``require_read_key=False``), then charges the
    request to that key's rate limit."""

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKey | None:
        state = request.app.state
        client = request.client.host if request.client else "unknown"
        key = None
        if credentials is not None:
            cached, key = state.keys.peek(credentials.credentials)
            if not cached:
                # Keys not seen lately cost a database lookup: those are charged to the client
                # address, so a flood of made-up keys cannot flood the database.
                await _charge(state, f"lookup:{client}")
                key = await run_in_threadpool(state.keys.lookup, credentials.credentials)
            if key is None:
                raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        elif scope != "read" or state.require_read_key:
            raise HTTPException(401, f"an API key with the {scope!r} scope is required: send 'Authorization: Bearer KEY'",
                                headers={"WWW-Authenticate": "Bearer"})
        if key is not None and not key.grants(scope):
            raise HTTPException(403, f"this API key lacks the {scope!r} scope (it has: {', '.join(sorted(key.scopes))})")
        await _charge(state, f"key:{key.key_id}" if key else f"ip:{client}")
        request.state.key_id = key.key_id if key else None
        return key

    return check


async def _charge(state, identity: str) -> None:
    wait = await state.limiter.hit(identity)
    if wait > 0:
        state.metrics.rate_limited.inc()
        raise HTTPException(429, f"rate limit exceeded; retry in {wait:.2f} s", headers={"Retry-After": str(max(1, math.ceil(wait)))})


class Problem(BaseModel):
    detail: str


# Documented on every guarded router, so the OpenAPI page shows what a client must handle.
AUTH_RESPONSES = {
    401: {"model": Problem, "description": "no API key, or an unknown or revoked one"},
    403: {"model": Problem, "description": "the API key lacks the scope this endpoint needs"},
    429: {"model": Problem, "description": "rate limit exceeded; see the Retry-After header"},
}


def answers(**described: str) -> dict[int, dict]:
    """OpenAPI ``responses`` for an operation's own errors: ``answers(e404="no such item")``."""
    return {int(code.removeprefix("e")): {"model": Problem, "description": text} for code, text in described.items()}

read_access = require("read")
events_access = require("events")
admin_access = require("admin")
