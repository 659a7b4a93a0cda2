"""An aiohttp connector that refuses to connect where the destination policy forbids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult

from hookline.contracts.destination_policy import DestinationPolicy


class DestinationRefusedError(OSError):
    """Every address of a destination is refused by the policy (nothing was connected to)."""


class GuardedConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` whose resolved addresses pass the destination policy.

    The check sits where aiohttp turns a host (name or IP literal, DNS-cached or not) into the
    addresses it connects to, so a name that resolves to an internal address at attempt time
    (DNS rebinding) is refused too.
    """

    def __init__(self, policy: DestinationPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._policy = policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        resolved = await super()._resolve_host(host, port, traces=traces)
        allowed = [r for r in resolved if self._policy.refusal(r["host"]) is None]
        if not allowed:
            reasons = sorted({str(self._policy.refusal(r["host"])) for r in resolved})
            raise DestinationRefusedError(f"{host} is not allowed: {', '.join(reasons)}")
        return allowed
