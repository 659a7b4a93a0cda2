"""``hookline apps|endpoints|events|deliveries``: the API from a terminal, tables or JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.conftest import API_KEY
from tests.harness import Hookline, Receiver

CLI = str(Path(sys.executable).parent / "hookline")


async def hookline_cli(hookline: Hookline, *args: str) -> tuple[int, str, str]:
    """Run the CLI against the test API (without blocking the worker in this event loop)."""
    process = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        "--api-url",
        hookline.api_url,
        "--api-key",
        API_KEY,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_people_cli_walks_through_a_delivery(hookline: Hookline, receiver: Receiver) -> None:
    code, out, _ = await hookline_cli(hookline, "apps", "create", "Acme CLI", "--uid", "acme-cli")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "UID", "NAME", "CREATED_AT"] and "acme-cli" in row

    code, out, _ = await hookline_cli(
        hookline, "endpoints", "create", "acme-cli", receiver.url, "--types", "batch.*"
    )
    assert code == 0 and "batch.*" in out
    code, out, _ = await hookline_cli(
        hookline, "events", "send", "acme-cli", "batch.completed", '{"n": 1}', "--id", "evt_cli"
    )
    assert code == 0 and "evt_cli" in out and "pending" in out
    code, out, _ = await hookline_cli(hookline, "deliveries", "list", "acme-cli", "--json")
    [delivery] = json.loads(out)["data"]
    view = await hookline.wait_status("acme-cli", delivery["id"], "succeeded")
    assert json.loads(receiver.requests[0].body) == {"n": 1}

    code, out, _ = await hookline_cli(hookline, "deliveries", "show", "acme-cli", view["id"])
    assert code == 0 and "succeeded" in out.splitlines()[1]
    code, _, err = await hookline_cli(hookline, "deliveries", "retry", "acme-cli", view["id"])
    assert code == 1 and "409 already_succeeded" in err


async def test_people_cli_reports_errors_plainly(hookline: Hookline) -> None:
    code, _, err = await hookline_cli(hookline, "apps", "show", "no-such-app")
    assert code == 1 and "404 not_found" in err
    code, _, err = await hookline_cli(hookline, "events", "send", "x", "a.b", "{not json")
    assert code != 0 and "payload must be JSON" in err
