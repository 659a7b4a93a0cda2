"""The HTTP API as the ``hookline`` client commands call it: where it is and which key they
send (``--api-url``, ``--api-key``, else the settings), and one request, errors raised."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from hookline.cli.parsing import UsageError
from hookline.config.settings import Settings


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


def add_api_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--api-url`` and ``--api-key``, which ``api_access`` reads, to a command."""
    parser.add_argument(
        "--api-url", help="the API's address; default: http://HOOKLINE_API_HOST:HOOKLINE_API_PORT"
    )
    parser.add_argument(
        "--api-key",
        help="default: the first of HOOKLINE_API_KEYS, else the key `hookline dev` keeps in"
        " HOOKLINE_DATA_DIR/api-key",
    )


@dataclass(frozen=True)
class ApiAccess:
    """The API a client command calls, and the key it sends."""

    url: str
    """Without a trailing slash."""
    key: str
    key_source: str
    """Where the key came from, for the message of a 401: ``--api-key``, ..."""

    def session(self, timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientSession:
        """A session that sends the key with every request (never to anyone else)."""
        headers = {"authorization": f"Bearer {self.key}"}
        if timeout is None:
            return aiohttp.ClientSession(headers=headers)
        return aiohttp.ClientSession(headers=headers, timeout=timeout)

    def explain(self, err: ApiCallError | ApiUnreachableError) -> str:
        """The message of an API error; for a 401, with where the refused key came from."""
        if isinstance(err, ApiCallError) and err.status == 401:
            return f"{err} (the API key is {self.key_source})"
        return str(err)


def api_access(args: argparse.Namespace, settings: Settings) -> ApiAccess:
    """The API and key that ``--api-url`` and ``--api-key`` (``add_api_options``) name, else
    the settings': the first of ``HOOKLINE_API_KEYS``, else ``hookline dev``'s key.

    Raises:
        UsageError: an ``--api-url`` that is not ``http(s)://``, or no key anywhere.
    """
    url = (args.api_url or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--api-url must start with http:// or https://, not {url!r}")
    if args.api_key:
        return ApiAccess(url, str(args.api_key), "--api-key")
    if settings.api_keys:
        return ApiAccess(url, settings.api_keys[0], "the first of HOOKLINE_API_KEYS")
    dev_key = settings.data_dir / "api-key"
    if dev_key.exists():
        return ApiAccess(url, dev_key.read_text().strip(), f"the development key in {dev_key}")
    raise UsageError(
        "no API key: pass --api-key, set HOOKLINE_API_KEYS, or run `hookline dev` here"
        f" (it keeps one in {dev_key})"
    )
