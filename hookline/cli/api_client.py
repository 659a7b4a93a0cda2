"""The HTTP API as the ``hookline`` people commands call it: one request, errors raised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


class ApiCallError(Exception):
    """The API answered with an error status; reads ``error {status} {code}: {message}``."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code: str | None = error.get("code")
        super().__init__(f"error {status} {self.code}: {error.get('message')}")


@dataclass(frozen=True)
class ApiClient:
    """Hookline's API at ``url``, through a session that carries the API key."""

    http: aiohttp.ClientSession
    url: str

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Make one request and decode its JSON answer.

        Args:
            method: The HTTP method.
            path: The path under the API's URL, e.g. ``/v1/apps``.
            body: What to send as JSON, if anything.

        Returns:
            The decoded answer.

        Raises:
            ApiCallError: the API answered 4xx or 5xx.
        """
        async with self.http.request(method, self.url + path, json=body) as response:
            data = await response.json(content_type=None)
        if response.status >= 400:
            raise ApiCallError(response.status, data)
        return data
