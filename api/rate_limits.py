"""Per-key request rate limits: a token bucket per API key, 429 with Retry-After past it."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from api.auth import PUBLIC_PATHS
from api.errors import error_body
from api.keys import SETTINGS

MAX_TRACKED_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class KeyRateLimiter:
    """Token buckets by API key, in this API process (each process limits on its own)."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def wait_for(self, key: str) -> float:
        """0 if a request with ``key`` may go now (and take a token), else seconds to wait."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_KEYS:
                self._buckets.clear()  # unknown keys are refused by auth anyway; stay bounded
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate


RATE_LIMITER = web.AppKey("rate_limiter", KeyRateLimiter)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 429 with ``Retry-After`` to a key past ``api_rate_limit_per_s`` (burst
    ``api_rate_limit_burst``). Runs after authentication, so only real keys have buckets."""
    if request.path in PUBLIC_PATHS or request.app[SETTINGS].api_rate_limit_per_s is None:
        return await handler(request)
    presented = request.headers.get("authorization", "").partition(" ")[2].strip()
    key = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).hexdigest()
    wait = request.app[RATE_LIMITER].wait_for(key)
    if wait > 0:
        response = error_body(429, "rate_limited", "too many requests for this key; retry later")
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    return await handler(request)
