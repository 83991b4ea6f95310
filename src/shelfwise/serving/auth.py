"""API keys: creation, hashed storage and the per-request lookup.

A key looks like ``sw_<key_id>_<secret>``. The ``key_id`` is public (it names the key in logs,
metrics and ``shelfwise keys list``); only the SHA-256 hash of the whole key is stored. Scopes:
``read`` (recommendations, catalogue, users), ``events`` (POST /events) and ``admin`` (which
also grants the other two).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from shelfwise.store import Store
from shelfwise.store.tables import api_keys

SCOPES = ("read", "events", "admin")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scopes: frozenset[str]
    name: str | None = None
    created_at: int | None = None
    revoked_at: int | None = None

    def grants(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


def create_key(store: Store, scopes: list[str] | tuple[str, ...], name: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key; returns it and its plain text (shown once, never stored)."""
    unknown = set(scopes) - set(SCOPES)
    if not scopes or unknown:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(sorted(unknown)) or 'none'}")
    key_id = secrets.token_hex(6)
    plain = f"sw_{key_id}_{secrets.token_urlsafe(32)}"
    ordered = tuple(s for s in SCOPES if s in scopes)
    created = _now_ms()
    with store.transaction() as conn:
        conn.execute(sa.insert(api_keys).values(
            key_id=key_id, key_hash=hash_key(plain), name=name, scopes=",".join(ordered), created_at=created))
    return ApiKey(key_id, frozenset(ordered), name, created), plain


def _row_key(row) -> ApiKey:
    return ApiKey(row.key_id, frozenset(s for s in row.scopes.split(",") if s), row.name, row.created_at, row.revoked_at)


def list_keys(store: Store) -> list[ApiKey]:
    with store.engine.connect() as conn:
        return [_row_key(r) for r in conn.execute(sa.select(api_keys).order_by(api_keys.c.id))]


def revoke_key(store: Store, key_id: str) -> bool:
    """Revoke a key by its id; False if there is no such active key."""
    with store.transaction() as conn:
        result = conn.execute(sa.update(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                              .values(revoked_at=_now_ms()))
        return result.rowcount > 0


class KeyCache:
    """Looks keys up by hash, remembering answers (also "no such key") for ``ttl`` seconds so
    the hot path does not touch the database. A revoked key stops working within ``ttl``."""

    def __init__(self, store: Store, ttl: float = 30.0, max_entries: int = 10_000):
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str) -> tuple[bool, ApiKey | None]:
        """(True, answer) when the answer is cached: no database, safe on the event loop."""
        hit = self._entries.get(hash_key(key))
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def lookup(self, key: str) -> ApiKey | None:
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == digest)).first()
        found = _row_key(row) if row is not None and row.revoked_at is None else None
        with self._lock:
            if len(self._entries) >= self.max_entries:
                # Unknown keys (a scan) must not grow memory without bound: start over.
                self._entries.clear()
            self._entries[digest] = (now + self.ttl, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
