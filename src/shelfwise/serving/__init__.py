"""The HTTP API: an app factory, a router per capability, the store as an injected dependency."""

from shelfwise.serving.app import create_app

__all__ = ["create_app"]
