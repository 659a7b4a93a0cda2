"""Token-bucket rate limits: requests per API key, and failed authentications per client
address; past either, 429 with ``Retry-After``."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from hookline.api.errors import ApiError
from hookline.api.keys import SETTINGS

MAX_TRACKED_KEYS = 10_000
IPV6_CLIENT_PREFIX = 64
"""An IPv6 client holds a whole /64 (RFC 6177); its failed authentications count together."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class KeyRateLimiter:
    """Token buckets by key, in this API process (each process limits on its own).

    Args:
        rate_per_s: Tokens each bucket gets back per second.
        burst: Tokens a bucket holds at most (and starts with).
        max_keys: Buckets kept at most; past it the least recently used is forgotten (a
            forgotten bucket starts full again), so memory stays bounded whatever the keys.
    """

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = MAX_TRACKED_KEYS) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait_for(self, key: str) -> float:
        """0 if ``key`` has a token, which this takes; else seconds until it has one."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def give_back(self, key: str) -> None:
        """Return a token ``wait_for`` took for something that turned out not to count (a
        failed authentication's token, when the key was found after all)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            now = time.monotonic()
            bucket.tokens = min(self._burst, self._tokens(bucket, now) + 1)
            bucket.updated = now

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        return min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)

    def _refilled(self, key: str) -> _Bucket:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        else:
            self._buckets.move_to_end(key)
        bucket.tokens = self._tokens(bucket, now)
        bucket.updated = now
        return bucket


RATE_LIMITER = web.AppKey("rate_limiter", KeyRateLimiter)
"""Requests by API key (``api_rate_limit_per_s``)."""
AUTH_FAILURES = web.AppKey("auth_failures", KeyRateLimiter)
"""Failed authentications by client address (``api_auth_failures_per_s``)."""
AUTHENTICATED_KEY = web.RequestKey("authenticated_key", str)
"""Set by authentication on a request whose key it accepted: the key its rate is counted by."""


def rate_limited(message: str, wait_s: float) -> ApiError:
    """A 429 ``rate_limited`` telling the client, in ``Retry-After``, when to try again."""
    return ApiError(
        429, "rate_limited", message, headers={"Retry-After": str(max(1, math.ceil(wait_s)))}
    )


def client_network(remote: str | None) -> str:
    """What failed authentications are counted by: the client's IPv4 address, or its IPv6
    /64 (one client can pick any address in it)."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote or ""  # not an IP address (a Unix socket): one bucket for all
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse with 429 and ``Retry-After`` a key past ``api_rate_limit_per_s`` (burst
    ``api_rate_limit_burst``). Runs after authentication: only accepted keys have buckets.

    Raises:
        ApiError: 429 ``rate_limited``.
    """
    presented = request.get(AUTHENTICATED_KEY)
    if presented is None or request.app[SETTINGS].api_rate_limit_per_s is None:
        return await handler(request)
    key = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).hexdigest()
    wait = request.app[RATE_LIMITER].wait_for(key)
    if wait > 0:
        raise rate_limited("too many requests for this key; retry later", wait)
    return await handler(request)
