"""ASGI middleware on every request: a body size limit, and metrics plus one JSON access-log
line. Written as plain ASGI (not BaseHTTPMiddleware) to keep the hot path light."""

from __future__ import annotations

import json
import logging
import time
import uuid

from shelfwise.serving.metrics import Metrics
from shelfwise.serving.pii import mask_text

access_log = logging.getLogger("shelfwise.access")


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413: by Content-Length before reading; a
    body sent without one (chunked) is read up to the limit first, then handed on."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = {"detail": f"request body too large (limit {self.max_bytes} bytes)"}
        length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                return await _send_json(send, 413, detail)
            return await self.app(scope, receive, send)
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        # No length given: buffer (at most max_bytes), so an oversized body never reaches the app.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await _send_json(send, 413, detail)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class ObservabilityMiddleware:
    """Latency, request and error metrics by route template, and an access-log line per request
    (path masked for personal data, the API key named by its public id)."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = 500

        async def capture(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.latency.labels(method, template).observe(elapsed)
            self.metrics.requests.labels(method, template, str(status)).inc()
            if status >= 500:
                self.metrics.errors.labels(method, template).inc()
            if access_log.isEnabledFor(logging.INFO):
                state = scope.get("state") or {}
                access_log.info("request", extra={"fields": {
                    "request_id": request_id, "method": method, "path": mask_text(scope["path"]), "route": template,
                    "status": status, "duration_ms": round(elapsed * 1000, 2), "key_id": state.get("key_id"),
                    "client": (scope.get("client") or ("", 0))[0],
                }})
