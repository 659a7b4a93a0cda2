"""Test helpers: a running Hookline (worker + API), scriptable receivers, condition waits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any, Literal, TypeAlias, TypeVar, cast, overload

import aiohttp
from aiohttp import web
from temporalio.client import Client

from hookline.api.serving import api_runner
from hookline.config.settings import Settings
from hookline.worker.running import running_worker

T = TypeVar("T")
# What a ``wait_for`` probe returns while its condition does not hold yet: ``None``, or
# ``False`` as in ``ready and value``. (At run time any falsy value keeps it waiting.)
NotYet: TypeAlias = Literal[False] | None


@overload
async def wait_for(
    probe: Callable[[], Awaitable[T | NotYet]],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T: ...


@overload
async def wait_for(
    probe: Callable[[], T | NotYet],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T: ...


async def wait_for(
    probe: Callable[[], Awaitable[T | NotYet] | T | NotYet],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy, and return that.

    Raises:
        AssertionError: ``timeout`` passed first (naming ``what`` and the last value seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        last = await result if isinstance(result, Awaitable) else result
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        await asyncio.sleep(interval)


@dataclass
class ReceivedRequest:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP receiver. Answers from ``script`` in order, then with ``default``."""

    url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, dict[str, str]] = (200, {})
    body: str = "ok"
    """What the receiver answers with."""
    delays: list[float] = field(default_factory=list)
    """Seconds to stall before answering the next requests, in order (to provoke timeouts)."""

    def respond(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        """Answer the next requests with these statuses (and headers), in order."""
        self.script.extend(a if isinstance(a, tuple) else (a, {}) for a in answers)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            ReceivedRequest(time.monotonic(), request.path, dict(request.headers), body)
        )
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status, headers = self.script.pop(0) if self.script else self.default
        return web.Response(status=status, headers=headers, text=self.body)

    def url_for(self, path: str) -> str:
        return self.url.removesuffix("/hook") + path

    @classmethod
    @asynccontextmanager
    async def running(cls) -> AsyncIterator[Receiver]:
        receiver = cls()
        app = web.Application()
        app.router.add_post("/{tail:.*}", receiver._handle)
        # shutdown_timeout: a handler stalling on purpose must not hold the teardown.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        receiver.url = f"http://127.0.0.1:{port}/hook"
        try:
            yield receiver
        finally:
            await runner.cleanup()


@dataclass
class Hookline:
    """A Hookline under test: worker and API on ``settings``, and an API client."""

    settings: Settings
    temporal: Client
    api_url: str
    http: aiohttp.ClientSession
    _worker_stack: AsyncExitStack | None = None

    async def call(
        self, method: str, path: str, json: Any = None, **kwargs: Any
    ) -> tuple[int, Any]:
        """Call the API; the status and the decoded JSON body (``None`` if empty)."""
        async with self.http.request(method, self.api_url + path, json=json, **kwargs) as resp:
            text = await resp.text()
            return resp.status, (await resp.json(content_type=None) if text else None)

    async def ok(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        """Call the API and assert a 2xx; the decoded body."""
        status, body = await self.call(method, path, json, **kwargs)
        assert 200 <= status < 300, (status, body)
        return body

    async def create_app(self, name: str = "Acme") -> str:
        return cast(str, (await self.ok("POST", "/v1/apps", {"name": name}))["id"])

    async def create_endpoint(self, app_id: str, url: str, **fields: Any) -> dict[str, Any]:
        endpoint = await self.ok("POST", f"/v1/apps/{app_id}/endpoints", {"url": url, **fields})
        return cast(dict[str, Any], endpoint)

    async def send_event(
        self, app_id: str, event_type: str, payload: Any, **fields: Any
    ) -> dict[str, Any]:
        body = {"type": event_type, "payload": payload, **fields}
        return cast(dict[str, Any], await self.ok("POST", f"/v1/apps/{app_id}/events", body))

    async def delivery(self, app_id: str, delivery_id: str) -> dict[str, Any]:
        view = await self.ok("GET", f"/v1/apps/{app_id}/deliveries/{delivery_id}")
        return cast(dict[str, Any], view)

    async def wait_status(
        self, app_id: str, delivery_id: str, status: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            view = await self.delivery(app_id, delivery_id)
            return view if view["status"] == status else None

        return await wait_for(probe, timeout=timeout, what=f"delivery {status}")

    async def start_worker(self, **options: Any) -> None:
        """Start the worker; ``options`` go to ``running_worker``."""
        assert self._worker_stack is None, "worker already running"
        stack = AsyncExitStack()
        await stack.enter_async_context(running_worker(self.settings, self.temporal, **options))
        self._worker_stack = stack

    async def stop_worker(self) -> None:
        assert self._worker_stack is not None, "worker not running"
        stack, self._worker_stack = self._worker_stack, None
        await stack.aclose()

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        settings: Settings,
        temporal: Client,
        api_key: str,
        *,
        worker: bool = True,
        **worker_options: Any,
    ) -> AsyncIterator[Hookline]:
        """The API on ``temporal`` and, if ``worker``, a worker on it (``worker_options`` go
        to ``running_worker``)."""
        runner = api_runner(settings, temporal, access_log=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession(headers={"authorization": f"Bearer {api_key}"}) as http:
            hookline = cls(settings, temporal, f"http://127.0.0.1:{port}", http)
            if worker:
                await hookline.start_worker(**worker_options)
            try:
                yield hookline
            finally:
                if hookline._worker_stack is not None:
                    await hookline.stop_worker()
                await runner.cleanup()


def run_hookline(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> CompletedProcess[str]:
    """Run the installed ``hookline`` command to its end with exactly ``env``; its exit code
    and output (never raises for a non-zero exit)."""
    command = [str(Path(sys.executable).parent / "hookline"), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
