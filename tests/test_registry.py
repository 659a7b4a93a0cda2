"""The registry on SQLite and, if configured, PostgreSQL: apps, endpoints, events."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from hookline.contracts.ids import delivery_id
from hookline.contracts.signing import generate_secret
from hookline.storage import tables as t
from hookline.storage.engine import create_engine
from hookline.storage.entities import DeliveryRef, Endpoint, UidTakenError
from hookline.storage.registry import Registry
from hookline.storage.secret_box import SecretBox, generate_key

PG_URL = os.environ.get("HOOKLINE_TEST_DATABASE_URL")


BOX = SecretBox([generate_key()])


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(
            not PG_URL,
            reason="set HOOKLINE_TEST_DATABASE_URL=postgresql+asyncpg://... to test PostgreSQL",
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    """A registry database: a fresh SQLite file, or this session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    assert postgres_url is not None
    return postgres_url


@pytest.fixture
async def registry(database_url: str) -> AsyncIterator[Registry]:
    engine = create_engine(database_url)
    registry = Registry(engine, BOX)
    try:
        await registry.create_schema()
        yield registry
    finally:
        await engine.dispose()


def _assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None, value
    assert value.utcoffset() == timedelta(0), value


def _ref(app_id: str, event_id: str, endpoint_id: str) -> DeliveryRef:
    return DeliveryRef(
        id=delivery_id(app_id, event_id, endpoint_id),
        app_id=app_id,
        event_id=event_id,
        endpoint_id=endpoint_id,
        created_at=datetime.now(UTC),
    )


def _endpoint_fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "url": "https://example.com/hook",
        "description": "",
        "event_types": None,
        "secret": "whsec_" + "A" * 43 + "=",
        "headers": {},
        "retry": None,
        "timeout_s": None,
    }
    fields.update(overrides)
    return fields


async def test_create_schema_is_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        registry = Registry(engine, BOX)
        await registry.create_schema()
        await registry.create_schema()
        app = await registry.apps.create("Acme", _unique("uid"), generate_secret())
        assert await registry.apps.get(app.id) == app
    finally:
        await engine.dispose()
    # A second engine on the same database finds the schema and the data already there.
    engine = create_engine(database_url)
    try:
        again = Registry(engine, BOX)
        await again.create_schema()
        assert await again.apps.get(app.id) == app
    finally:
        await engine.dispose()


async def test_app_create_and_get_by_id_and_uid(registry: Registry) -> None:
    uid = _unique("acme")
    app = await registry.apps.create("Acme Inc.", uid, generate_secret())

    assert app.id.startswith("app_")
    assert app.name == "Acme Inc." and app.uid == uid
    _assert_utc(app.created_at)
    by_id = await registry.apps.get(app.id)
    by_uid = await registry.apps.get(uid)
    assert by_id == app
    assert by_uid == app
    _assert_utc(by_id.created_at)
    assert await registry.apps.get(_unique("missing")) is None
    assert await registry.apps.get("app_doesnotexist") is None


async def test_apps_without_uid_coexist(registry: Registry) -> None:
    first = await registry.apps.create("One", None, generate_secret())
    second = await registry.apps.create("Two", None, generate_secret())

    assert first.id != second.id
    one, two = await registry.apps.get(first.id), await registry.apps.get(second.id)
    assert one is not None and one.uid is None
    assert two is not None and two.name == "Two"


async def test_duplicate_uid_raises_uid_taken(registry: Registry) -> None:
    uid = _unique("dup")
    first = await registry.apps.create("First", uid, generate_secret())

    with pytest.raises(UidTakenError):
        await registry.apps.create("Second", uid, generate_secret())

    assert await registry.apps.get(uid) == first


async def test_endpoint_create_list_get(registry: Registry) -> None:
    app = await registry.apps.create("A", _unique("a"), generate_secret())
    other = await registry.apps.create("B", _unique("b"), generate_secret())
    first = await registry.endpoints.create(
        app.id,
        **_endpoint_fields(
            url="https://a.example/1",
            description="first",
            event_types=["batch.*", "job.failed"],
            headers={"X-Customer": "acme"},
            retry={"initial_interval_s": 5.0, "max_interval_s": 60.0},
            timeout_s=12.5,
        ),
    )
    second = await registry.endpoints.create(app.id, **_endpoint_fields(url="https://a.example/2"))
    await registry.endpoints.create(other.id, **_endpoint_fields(url="https://b.example/"))

    assert first.id.startswith("ep_") and first.id != second.id
    assert first.app_id == app.id
    listed = await registry.endpoints.list(app.id)
    assert [e.id for e in listed] == [first.id, second.id]
    assert listed[0] == first
    assert listed[1] == second
    assert listed[0].event_types == ["batch.*", "job.failed"]
    assert listed[0].headers == {"X-Customer": "acme"}
    assert listed[0].retry == {"initial_interval_s": 5.0, "max_interval_s": 60.0}
    assert listed[0].timeout_s == 12.5
    assert listed[1].event_types is None and listed[1].retry is None
    assert listed[1].timeout_s is None

    assert await registry.endpoints.get(first.id) == first
    assert await registry.endpoints.get(first.id, app.id) == first
    assert await registry.endpoints.get(first.id, other.id) is None
    assert await registry.endpoints.get("ep_missing") is None
    assert await registry.endpoints.get("ep_missing", app.id) is None
    assert await registry.endpoints.list(_unique("no-such-app")) == []


async def test_endpoint_update_is_scoped_to_its_app(registry: Registry) -> None:
    app = await registry.apps.create("A", _unique("a"), generate_secret())
    other = await registry.apps.create("B", _unique("b"), generate_secret())
    endpoint = await registry.endpoints.create(app.id, **_endpoint_fields())

    assert await registry.endpoints.update(other.id, endpoint.id, url="https://evil/") is None
    assert await registry.endpoints.update(app.id, "ep_missing", url="https://x/") is None
    assert await registry.endpoints.get(endpoint.id) == endpoint

    updated = await registry.endpoints.update(
        app.id,
        endpoint.id,
        url="https://new.example/hook",
        event_types=["a.b"],
        headers={"X-A": "1"},
        retry={"window_s": 600.0},
        timeout_s=3.0,
        description="changed",
    )

    assert updated is not None
    assert updated.url == "https://new.example/hook"
    assert updated.event_types == ["a.b"]
    assert updated.headers == {"X-A": "1"}
    assert updated.retry == {"window_s": 600.0}
    assert updated.timeout_s == 3.0
    assert updated.description == "changed"
    assert updated.secret == endpoint.secret
    assert updated.created_at == endpoint.created_at
    assert updated.updated_at >= endpoint.updated_at
    assert await registry.endpoints.get(endpoint.id, app.id) == updated

    cleared = await registry.endpoints.update(app.id, endpoint.id, event_types=None, retry=None)
    assert cleared is not None
    assert cleared.event_types is None and cleared.retry is None
    assert cleared.url == "https://new.example/hook"


async def test_endpoint_delete_is_scoped_to_its_app(registry: Registry) -> None:
    app = await registry.apps.create("A", _unique("a"), generate_secret())
    other = await registry.apps.create("B", _unique("b"), generate_secret())
    endpoint = await registry.endpoints.create(app.id, **_endpoint_fields())
    kept = await registry.endpoints.create(app.id, **_endpoint_fields())

    assert await registry.endpoints.delete(other.id, endpoint.id) is False
    assert await registry.endpoints.get(endpoint.id) is not None

    assert await registry.endpoints.delete(app.id, endpoint.id) is True
    assert await registry.endpoints.get(endpoint.id) is None
    assert await registry.endpoints.delete(app.id, endpoint.id) is False
    assert [e.id for e in await registry.endpoints.list(app.id)] == [kept.id]


async def test_endpoint_of_missing_app_is_refused(registry: Registry) -> None:
    with pytest.raises(IntegrityError):
        await registry.endpoints.create(f"app_{uuid.uuid4().hex}", **_endpoint_fields())


async def test_timestamps_are_timezone_aware_utc(registry: Registry) -> None:
    app = await registry.apps.create("A", _unique("a"), generate_secret())
    endpoint = await registry.endpoints.create(app.id, **_endpoint_fields())
    stored_app = await registry.apps.get(app.id)
    stored = await registry.endpoints.get(endpoint.id)
    [listed] = await registry.endpoints.list(app.id)
    updated = await registry.endpoints.update(app.id, endpoint.id, description="x")
    assert stored_app is not None and stored is not None and updated is not None

    for value in (
        app.created_at,
        stored_app.created_at,
        endpoint.created_at,
        endpoint.updated_at,
        stored.created_at,
        stored.updated_at,
        listed.created_at,
        listed.updated_at,
        updated.created_at,
        updated.updated_at,
    ):
        _assert_utc(value)
    # The stored instant is the one written (to the microsecond), not shifted by a zone.
    assert stored_app.created_at == app.created_at
    assert stored.created_at == endpoint.created_at
    assert abs(datetime.now(UTC) - stored.created_at) < timedelta(minutes=1)


async def test_record_event_first_record_wins(registry: Registry) -> None:
    app = await registry.apps.create("A", _unique("a"), generate_secret())
    event_id = _unique("evt")
    first_refs = sorted(
        [_ref(app.id, event_id, "ep_b"), _ref(app.id, event_id, "ep_a")],
        key=lambda r: r.endpoint_id,
    )

    record, created = await registry.events.record(app.id, event_id, "batch.completed", first_refs)

    assert created is True
    assert record.app_id == app.id and record.id == event_id
    assert record.type == "batch.completed"
    assert record.deliveries == first_refs
    _assert_utc(record.created_at)

    again, created_again = await registry.events.record(
        app.id, event_id, "job.failed", [_ref(app.id, event_id, "ep_c")]
    )

    assert created_again is False
    assert again.type == "batch.completed"
    assert again.created_at == record.created_at
    assert [r.id for r in again.deliveries] == [r.id for r in first_refs]
    assert [r.endpoint_id for r in again.deliveries] == ["ep_a", "ep_b"]
    for ref in again.deliveries:
        _assert_utc(ref.created_at)
    assert await registry.events.get(app.id, event_id) == again
    assert await registry.events.delivery(app.id, delivery_id(app.id, event_id, "ep_c")) is None


async def test_record_event_without_deliveries(registry: Registry) -> None:
    app = await registry.apps.create("A", _unique("a"), generate_secret())
    event_id = _unique("evt")

    record, created = await registry.events.record(app.id, event_id, "nobody.listens", [])
    again, created_again = await registry.events.record(app.id, event_id, "nobody.listens", [])

    assert created is True and created_again is False
    assert record.deliveries == [] and again.deliveries == []
    assert await registry.events.get(app.id, _unique("evt")) is None


async def test_same_event_id_in_two_apps_is_two_events(registry: Registry) -> None:
    app = await registry.apps.create("A", _unique("a"), generate_secret())
    other = await registry.apps.create("B", _unique("b"), generate_secret())
    event_id = _unique("evt")

    _, created = await registry.events.record(
        app.id, event_id, "a.b", [_ref(app.id, event_id, "ep_1")]
    )
    _, created_other = await registry.events.record(
        other.id, event_id, "a.b", [_ref(other.id, event_id, "ep_1")]
    )

    assert created is True and created_other is True


async def test_get_delivery_is_scoped_to_its_app(registry: Registry) -> None:
    app = await registry.apps.create("A", _unique("a"), generate_secret())
    other = await registry.apps.create("B", _unique("b"), generate_secret())
    event_id = _unique("evt")
    ref = _ref(app.id, event_id, "ep_1")
    await registry.events.record(app.id, event_id, "a.b", [ref])

    found = await registry.events.delivery(app.id, ref.id)

    assert found is not None
    assert (found.id, found.app_id, found.event_id, found.endpoint_id) == (
        ref.id,
        app.id,
        event_id,
        "ep_1",
    )
    _assert_utc(found.created_at)
    assert await registry.events.delivery(other.id, ref.id) is None
    assert await registry.events.delivery(app.id, "dlv_missing") is None


def _endpoint(event_types: list[str] | None) -> Endpoint:
    now = datetime.now(UTC)
    return Endpoint(
        id="ep_1",
        app_id="app_1",
        url="https://example.com/",
        description="",
        event_types=event_types,
        secret="whsec_x",
        headers={},
        retry=None,
        timeout_s=None,
        created_at=now,
        updated_at=now,
    )


@pytest.mark.parametrize(
    ("event_types", "event_type", "expected"),
    [
        (None, "anything.at.all", True),
        (None, "x", True),
        ([], "batch.completed", False),
        (["batch.completed"], "batch.completed", True),
        (["batch.completed"], "batch.completed.late", False),
        (["batch.completed"], "batch.complete", False),
        (["batch.completed"], "Batch.Completed", False),
        (["job.failed", "batch.completed"], "batch.completed", True),
        (["batch.*"], "batch.completed", True),
        (["batch.*"], "batch.a.b", True),
        (["batch.*"], "batches.x", False),
        (["batch.*"], "batch", False),
        (["batch.*"], "batchx", False),
        (["batch.*"], "job.batch.completed", False),
        (["a.b.*"], "a.b.c", True),
        (["a.b.*"], "a.bc.d", False),
        (["a.b.*"], "a.b", False),
    ],
)
def test_subscribes_to(event_types: list[str] | None, event_type: str, expected: bool) -> None:
    assert _endpoint(event_types).subscribes_to(event_type) is expected


def test_processes_starting_together_migrate_one_at_a_time(tmp_path: Path) -> None:
    # API and workers start at once on a fresh SQLite file: every one must come up.
    script = (
        "import asyncio, sys; from pathlib import Path; "
        "from hookline.config.settings import Settings; "
        "from hookline.storage.registry import opened_registry\n"
        "async def main():\n"
        "    async with opened_registry(Settings(data_dir=Path(sys.argv[1]))):\n"
        "        pass\n"
        "asyncio.run(main())"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE)
        for _ in range(5)
    ]
    errors = [run.communicate(timeout=120)[1] for run in runs]
    assert [run.returncode for run in runs] == [0] * 5, errors


async def test_a_header_value_that_does_not_open_is_read_as_it_is_stored(
    registry: Registry, database_url: str
) -> None:
    # Written behind the registry's back (not by any release): reading it must not raise,
    # or one row would stop every list of the app's endpoints and every delivery.
    app = await registry.apps.create("Acme", _unique("uid"), generate_secret())
    endpoint = await registry.endpoints.create(app.id, **_endpoint_fields())
    odd = {"X-Looks-Sealed": "enc:v1:nokey:AAAA", "X-Broken": "enc:v1:" + "x" * 10}
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                t.endpoints.update().where(t.endpoints.c.id == endpoint.id).values(headers=odd)
            )
    finally:
        await engine.dispose()

    read = await registry.endpoints.get(endpoint.id)
    assert read is not None and read.headers == odd
    assert [e.headers for e in await registry.endpoints.list(app.id)] == [odd]
