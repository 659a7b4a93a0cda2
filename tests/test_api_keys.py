"""API keys made with ``hookline keys``: hashed at rest, scoped to one app, revocable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from hookline.storage import tables as t
from hookline.storage.engine import create_engine
from hookline.storage.registry import opened_registry
from tests.harness import Hookline


async def _call(
    hookline: Hookline, key: str, method: str, path: str, body: object = None
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(headers={"authorization": f"Bearer {key}"}) as http:
        async with http.request(method, hookline.api_url + path, json=body) as response:
            return response.status, await response.json()


async def test_scoped_key_sees_its_app_only(hookline: Hookline) -> None:
    mine = await hookline.create_app("Mine")
    other = await hookline.create_app("Other")
    other_endpoint = await hookline.create_endpoint(other, "https://example.com/hook")
    async with opened_registry(hookline.settings) as registry:
        _, key = await registry.keys.create("ci", mine)

    status, body = await _call(hookline, key, "GET", f"/v1/apps/{mine}")
    assert status == 200 and body["id"] == mine
    status, _ = await _call(
        hookline, key, "POST", f"/v1/apps/{mine}/endpoints", {"url": "https://example.com/m"}
    )
    assert status == 201
    for method, path in (
        ("GET", f"/v1/apps/{other}"),
        ("GET", f"/v1/apps/{other}/endpoints"),
        ("GET", f"/v1/apps/{other}/endpoints/{other_endpoint['id']}/secret"),
        ("GET", f"/v1/apps/{other}/events"),
        ("GET", f"/v1/apps/{other}/deliveries"),
        ("POST", f"/v1/apps/{other}/events"),
    ):
        status, body = await _call(hookline, key, method, path, {"type": "a.b", "payload": {}})
        assert status == 404 and body["error"]["code"] == "not_found", (method, path, body)
    status, body = await _call(hookline, key, "POST", "/v1/apps", {"name": "More"})
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_admin_keys_and_revocation(hookline: Hookline) -> None:
    async with opened_registry(hookline.settings) as registry:
        record, key = await registry.keys.create("admin", None)
        status, body = await _call(hookline, key, "POST", "/v1/apps", {"name": "By admin key"})
        assert status == 201

        assert await registry.keys.revoke(record.id)
        assert not await registry.keys.revoke(record.id)
    status, body = await _call(hookline, key, "GET", f"/v1/apps/{body['id']}")
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_only_a_hash_of_each_key_is_stored(hookline: Hookline) -> None:
    async with opened_registry(hookline.settings) as registry:
        _, key = await registry.keys.create("stored", None)
    engine = create_engine(hookline.settings.resolved_database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(t.api_keys))).all()
    finally:
        await engine.dispose()
    stored = " ".join(str(value) for row in rows for value in row)
    assert key not in stored and key[10:] not in stored


def test_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    env = {**os.environ, "HOOKLINE_DATA_DIR": str(tmp_path)}
    env.pop("HOOKLINE_DATABASE_URL", None)
    cli = str(Path(sys.executable).parent / "hookline")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [cli, "keys", *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    created = run("create", "--name", "deploy bot")
    assert created.returncode == 0, created.stderr
    key_id, key = created.stdout.strip().split("\t")
    assert key.startswith("hl_") and "not stored" in created.stderr
    listed = run("list")
    assert key_id in listed.stdout and "deploy bot" in listed.stdout and "admin" in listed.stdout
    assert key not in listed.stdout
    assert run("revoke", key_id).returncode == 0
    assert "revoked" in run("list").stdout
    missing = run("revoke", key_id)
    assert missing.returncode != 0 and "no live key" in missing.stderr
    unknown_app = run("create", "--name", "x", "--app", "nope")
    assert unknown_app.returncode != 0 and "no app" in unknown_app.stderr
