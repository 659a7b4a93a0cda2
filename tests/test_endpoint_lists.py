"""The API's copy of each app's endpoints: a change made through the API applies to the next
event at once; one made elsewhere (another process) once the TTL has passed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from hookline.config.settings import Settings
from hookline.contracts.signing import generate_secret
from hookline.delivery.endpoint_lists import EndpointLists
from hookline.storage.endpoints import EndpointRepository
from hookline.storage.engine import create_engine
from hookline.storage.entities import Endpoint
from hookline.storage.registry import Registry
from hookline.storage.secret_box import SecretBox, generate_key
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for
from tests.test_endpoint_cache import Clock, new_endpoint


def _endpoints_of(accepted: dict[str, list[dict[str, str]]]) -> set[str]:
    return {delivery["endpoint_id"] for delivery in accepted["deliveries"]}


async def test_changes_through_the_api_apply_to_the_next_event(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    settings = settings.model_copy(update={"endpoint_cache_ttl_s": 300})

    def received(path: str, n: int) -> bool:
        return any(r.path == path and r.body == f'{{"n":{n}}}'.encode() for r in receiver.requests)

    async with Hookline.running(settings, temporal_client, API_KEY) as hookline:
        app_id = await hookline.create_app()
        a = (await hookline.create_endpoint(app_id, receiver.url_for("/a")))["id"]
        only_a = await hookline.send_event(app_id, "job.done", {"n": 1})
        await wait_for(lambda: received("/a", 1), timeout=60, what="event 1 at /a")

        b = (await hookline.create_endpoint(app_id, receiver.url_for("/b")))["id"]
        a_and_b = await hookline.send_event(app_id, "job.done", {"n": 2})
        await wait_for(lambda: received("/a", 2) and received("/b", 2), timeout=60, what="event 2")

        await hookline.ok("PATCH", f"/v1/apps/{app_id}/endpoints/{a}", {"disabled": True})
        only_b = await hookline.send_event(app_id, "job.done", {"n": 3})
        await wait_for(lambda: received("/b", 3), timeout=60, what="event 3 at /b")

        await hookline.ok("DELETE", f"/v1/apps/{app_id}/endpoints/{b}")
        none = await hookline.send_event(app_id, "job.done", {"n": 4})

    assert _endpoints_of(only_a) == {a}
    assert _endpoints_of(a_and_b) == {a, b}
    assert _endpoints_of(only_b) == {b}
    assert _endpoints_of(none) == set()


async def test_a_change_made_elsewhere_applies_once_the_ttl_has_passed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    box = SecretBox([generate_key()])
    api_engine, other_engine = create_engine(url), create_engine(url)
    try:
        api_registry, other_process = Registry(api_engine, box), Registry(other_engine, box)
        await api_registry.create_schema()
        app = await api_registry.apps.create("Acme", None, generate_secret())
        clock = Clock()
        lists = EndpointLists(api_registry, ttl_s=5, clock=clock)
        assert await lists.of_app(app.id) == []

        created = await new_endpoint(other_process, app.id, "https://a.example/hook")
        clock.now += 4.9
        within_ttl = await lists.of_app(app.id)
        clock.now += 0.2
        after_ttl = await lists.of_app(app.id)
    finally:
        await api_engine.dispose()
        await other_engine.dispose()

    assert within_ttl == []
    assert [endpoint.id for endpoint in after_ttl] == [created.id]


class _PausingEndpoints(EndpointRepository):
    """Endpoints whose reads wait until let go: to interleave a write with one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_started = asyncio.Event()
        self.let_read_finish = asyncio.Event()

    async def list(self, app_id: str) -> list[Endpoint]:
        endpoints = await super().list(app_id)
        self.read_started.set()
        await self.let_read_finish.wait()
        return endpoints


class _PausingRegistry(Registry):
    """A registry whose endpoint list reads wait until let go."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        super().__init__(engine, box)
        self.endpoints = self.paused = _PausingEndpoints(engine, box)


async def test_a_list_read_while_an_endpoint_is_written_is_not_kept(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    try:
        registry = _PausingRegistry(engine, SecretBox([generate_key()]))
        await registry.create_schema()
        app = await registry.apps.create("Acme", None, generate_secret())
        lists = EndpointLists(registry, ttl_s=300, clock=Clock())

        reading = asyncio.ensure_future(lists.of_app(app.id))
        await registry.paused.read_started.wait()  # the read has its (empty) rows, not yet returned
        created = await new_endpoint(registry, app.id, "https://a.example/hook")
        registry.paused.let_read_finish.set()
        assert await reading == []  # the read began before the write
        after = await lists.of_app(app.id)
    finally:
        await engine.dispose()

    assert [endpoint.id for endpoint in after] == [created.id]
