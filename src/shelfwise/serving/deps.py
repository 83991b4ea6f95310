"""Dependencies injected into the routers."""

from fastapi import Request

from shelfwise.store import Store


def get_store(request: Request) -> Store:
    return request.app.state.store
