"""The API's copy of each app's endpoints: a change made through the API applies to the next
event at once; one made elsewhere (another process) once the TTL has passed."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from activities.signing import generate_secret
from api.endpoint_lists import EndpointLists
from hookline.registry import Registry, create_engine
from hookline.secret_box import SecretBox, generate_key
from hookline.settings import Settings
from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver, wait_for
from tests.test_endpoint_cache import Clock


def _endpoints_of(accepted: dict[str, list[dict[str, str]]]) -> set[str]:
    return {delivery["endpoint_id"] for delivery in accepted["deliveries"]}


async def test_changes_through_the_api_apply_to_the_next_event(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    settings = settings.model_copy(update={"endpoint_cache_ttl_s": 300})
    async with Hookline.running(settings, temporal_client, API_KEY) as hookline:
        app_id = await hookline.create_app()
        a = (await hookline.create_endpoint(app_id, receiver.url_for("/a")))["id"]
        only_a = await hookline.send_event(app_id, "job.done", {"n": 1})
        b = (await hookline.create_endpoint(app_id, receiver.url_for("/b")))["id"]
        a_and_b = await hookline.send_event(app_id, "job.done", {"n": 2})
        await hookline.ok("PATCH", f"/v1/apps/{app_id}/endpoints/{a}", {"disabled": True})
        only_b = await hookline.send_event(app_id, "job.done", {"n": 3})
        await hookline.ok("DELETE", f"/v1/apps/{app_id}/endpoints/{b}")
        none = await hookline.send_event(app_id, "job.done", {"n": 4})

        assert _endpoints_of(only_a) == {a}
        assert _endpoints_of(a_and_b) == {a, b}
        assert _endpoints_of(only_b) == {b}
        assert _endpoints_of(none) == set()
        expected = {("/a", b'{"n":1}'), ("/a", b'{"n":2}'), ("/b", b'{"n":2}'), ("/b", b'{"n":3}')}
        await wait_for(
            lambda: {(r.path, r.body) for r in receiver.requests} >= expected,
            what="the deliveries",
        )


async def test_a_change_made_elsewhere_applies_once_the_ttl_has_passed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    box = SecretBox([generate_key()])
    api_engine, other_engine = create_engine(url), create_engine(url)
    try:
        api_registry, other_process = Registry(api_engine, box), Registry(other_engine, box)
        await api_registry.create_schema()
        app = await api_registry.create_app("Acme", None, generate_secret())
        clock = Clock()
        lists = EndpointLists(api_registry, ttl_s=5, clock=clock)
        assert await lists.of_app(app.id) == []

        created = await other_process.create_endpoint(
            app.id,
            url="https://a.example/hook",
            description="",
            event_types=None,
            secret=generate_secret(),
            headers={},
            retry=None,
            timeout_s=None,
        )
        clock.now += 4.9
        within_ttl = await lists.of_app(app.id)
        clock.now += 0.2
        after_ttl = await lists.of_app(app.id)
    finally:
        await api_engine.dispose()
        await other_engine.dispose()

    assert within_ttl == []
    assert [endpoint.id for endpoint in after_ttl] == [created.id]
