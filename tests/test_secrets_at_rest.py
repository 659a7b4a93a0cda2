"""Signing secrets at rest: sealed with AES-GCM, readable after key rotation, never plaintext."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from hookline.config.settings import Settings
from hookline.contracts.signing import generate_secret
from hookline.storage import tables as t
from hookline.storage.engine import create_engine
from hookline.storage.registry import Registry, opened_registry
from hookline.storage.secret_box import SecretBox, SecretBoxError, generate_key, secret_box_for
from tests.harness import Hookline, run_hookline


async def test_database_holds_only_sealed_secrets(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    endpoint = await hookline.create_endpoint(app_id, "https://example.com/hook")
    await hookline.ok(
        "POST", f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/secret/rotate", {"grace_s": 60}
    )

    engine = create_engine(hookline.settings.resolved_database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(select(t.endpoints).where(t.endpoints.c.id == endpoint["id"]))
            ).one()
            app_row = (await conn.execute(select(t.apps).where(t.apps.c.id == app_id))).one()
    finally:
        await engine.dispose()
    stored = [row.secret, row.previous_secret, app_row.secret]
    assert all(value.startswith("enc:v1:") for value in stored), stored
    raw = " ".join(stored)
    assert endpoint["secret"] not in raw
    assert endpoint["secret"].removeprefix("whsec_") not in raw


async def test_old_keys_still_open_what_they_sealed(tmp_path: Path) -> None:
    old_key, new_key = generate_key(), generate_key()
    secret = generate_secret()
    old_settings = Settings(data_dir=tmp_path, secrets_keys=[old_key])
    async with opened_registry(old_settings) as registry:
        app = await registry.apps.create("A", None, generate_secret())
        endpoint = await registry.endpoints.create(
            app.id, url="https://example.com", secret=secret, headers={}
        )

    rotated = Settings(data_dir=tmp_path, secrets_keys=[new_key, old_key])
    async with opened_registry(rotated) as registry:
        found = await registry.endpoints.get(endpoint.id)
        assert found is not None and found.secret == secret

    engine = create_engine(old_settings.resolved_database_url)
    try:
        with pytest.raises(SecretBoxError, match="not configured"):
            await Registry(engine, SecretBox([new_key])).endpoints.get(endpoint.id)
    finally:
        await engine.dispose()


def test_tampered_ciphertext_is_refused_without_echoing_it() -> None:
    box = SecretBox([generate_key()])
    sealed = box.seal("whsec_c2VjcmV0")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretBoxError) as caught:
        box.open(tampered)
    assert tampered not in str(caught.value) and "whsec_" not in str(caught.value)


@pytest.mark.parametrize(
    "keys",
    [["no-colon"], ["k1:not-base64!"], ["k1:" + "QUJD"], [":" + generate_key().split(":")[1]]],
)
def test_malformed_keys_are_refused(keys: list[str]) -> None:
    with pytest.raises(SecretBoxError):
        SecretBox(keys)


def test_development_makes_a_key_once_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    sealed = secret_box_for(settings).seal("whsec_abc")
    assert (tmp_path / "secrets-key").stat().st_mode & 0o777 == 0o600
    assert secret_box_for(settings).open(sealed) == "whsec_abc"


def test_production_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    env = {
        "HOOKLINE_MODE": "production",
        "HOOKLINE_API_KEYS": "k" * 32,
        "HOOKLINE_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = run_hookline(["api"], env)
    assert done.returncode != 0
    assert "HOOKLINE_SECRETS_KEYS is required in production mode" in done.stderr
    assert not (tmp_path / "secrets-key").exists()


def test_processes_starting_together_share_one_development_key(tmp_path: Path) -> None:
    # API and worker start at once on a fresh data directory: both must read the same key.
    script = (
        "import sys; from pathlib import Path; from hookline.config.settings import Settings; "
        "from hookline.storage.secret_box import secret_box_for; "
        "print(secret_box_for(Settings(data_dir=Path(sys.argv[1]))).seal('x'))"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    sealed = [run.communicate(timeout=60)[0].strip() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    box = secret_box_for(Settings(data_dir=tmp_path))
    assert {box.open(value) for value in sealed} == {"x"}
    assert [p.name for p in tmp_path.iterdir()] == ["secrets-key"]
