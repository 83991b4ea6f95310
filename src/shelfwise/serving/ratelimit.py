"""Rate limits per API key (or per client address for anonymous reads).

Both limiters run the same algorithm, GCRA (a token bucket kept as one timestamp): a key may
send ``burst`` requests at once and ``rate`` per second after that. ``MemoryLimiter`` counts in
this process; ``RedisLimiter`` keeps the timestamp in Redis (one atomic script call, Redis's own
clock) so that all API replicas share one budget per key.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("shelfwise.ratelimit")


class MemoryLimiter:
    def __init__(self, rate: float, burst: int, max_keys: int = 100_000):
        self.interval = 1.0 / rate
        self.tolerance = self.interval * burst
        self.max_keys = max_keys
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    async def hit(self, identity: str) -> float:
        """0 if the request may proceed, else the seconds to wait before retrying."""
        now = time.monotonic()
        with self._lock:
            tat = max(self._tat.get(identity, now), now) + self.interval
            if tat - now > self.tolerance:
                return tat - now - self.tolerance
            if len(self._tat) >= self.max_keys:
                # Drop the keys whose bucket is full again (their timestamp is in the past).
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            self._tat[identity] = tat
            return 0.0

    async def close(self) -> None:
        pass

    @property
    def backend(self) -> str:
        return "memory"


# KEYS[1]: the bucket; ARGV[1]: microseconds per request; ARGV[2]: burst tolerance in microseconds.
# Returns 0 (allowed) or the microseconds to wait.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
tat = tat + interval
if tat - now > tolerance then
  return math.ceil(tat - now - tolerance)
end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 0
"""


class RedisLimiter:
    """GCRA in Redis. If Redis cannot be reached the request is let through (and logged): an
    outage of the limiter should not become an outage of the shop."""

    def __init__(self, url: str, rate: float, burst: int, prefix: str = "shelfwise:ratelimit:"):
        self.url = url
        self.interval_us = int(round(1e6 / rate))
        self.tolerance_us = self.interval_us * burst
        self.prefix = prefix
        self._client = None
        self._script = None
        self.failures = 0

    def _ensure(self):
        # The asyncio client belongs to the event loop that first uses it, so it is made lazily.
        if self._client is None:
            import redis.asyncio as redis

            self._client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
            self._script = self._client.register_script(GCRA_LUA)
        return self._script

    async def hit(self, identity: str) -> float:
        script = self._ensure()
        try:
            wait_us = await script(keys=[self.prefix + identity], args=[self.interval_us, self.tolerance_us])
        except Exception as e:  # noqa: BLE001 - any Redis failure fails open
            self.failures += 1
            log.warning("rate limiter: redis unavailable, request allowed", extra={"fields": {"error": type(e).__name__}})
            return 0.0
        return int(wait_us) / 1e6

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def backend(self) -> str:
        return "redis"


def make_limiter(redis_url: str | None, rate: float, burst: int) -> MemoryLimiter | RedisLimiter:
    return RedisLimiter(redis_url, rate, burst) if redis_url else MemoryLimiter(rate, burst)
