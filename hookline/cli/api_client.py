"""The HTTP API as the ``hookline`` people commands call it: one request, errors raised."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


class ApiCallError(Exception):
    """The API answered with an error status; reads ``error {status} {code}: {message}``."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code: str | None = error.get("code")
        if self.code is None:  # not Hookline's error shape: a proxy, or another server
            super().__init__(f"error {status}: an answer without Hookline's error body")
        else:
            super().__init__(f"error {status} {self.code}: {error.get('message')}")


class ApiUnreachableError(Exception):
    """The API could not be reached, or answered something that is not JSON."""


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
            ApiUnreachableError: no answer (connection refused, a bad URL, a time-out), or a
                2xx answer that is not JSON.
        """
        try:
            async with self.http.request(method, self.url + path, json=body) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            reason = str(err) or type(err).__name__
            raise ApiUnreachableError(f"cannot reach the API at {self.url}: {reason}") from None
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
            if response.status < 400:
                raise ApiUnreachableError(
                    f"{self.url} answered {response.status} with something other than JSON:"
                    " is it Hookline's API?"
                ) from None
        if response.status >= 400:
            raise ApiCallError(response.status, data)
        return data
