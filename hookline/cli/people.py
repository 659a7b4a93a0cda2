"""``hookline apps|endpoints|events|deliveries|recoveries``: the HTTP API for people, as tables
or JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

import aiohttp

from hookline.cli import recoveries as recovery_cli
from hookline.cli.api_client import ApiCallError, ApiClient
from hookline.config.settings import Settings

COMMANDS = ("apps", "endpoints", "events", "deliveries", "recoveries")

TABLES: dict[str, list[str]] = {
    "app": ["id", "uid", "name", "created_at"],
    "endpoint": ["id", "url", "event_types", "disabled", "signature_scheme"],
    "event": ["id", "type", "created_at", "duplicate"],
    "delivery": ["id", "status", "attempts", "event_type", "endpoint_id", "created_at"],
    "recovery": ["id", "endpoint_id", "status", "found", "retried", "skipped", "errors"],
}


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the API client commands to ``hookline``'s subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api-url", help="default: http://HOOKLINE_API_HOST:HOOKLINE_API_PORT")
    common.add_argument(
        "--api-key", help="default: the first HOOKLINE_API_KEYS, or {data_dir}/api-key"
    )
    common.add_argument("--json", action="store_true", help="print the API's JSON as it is")

    apps = _group(commands, "apps", "create and show apps")
    create = apps.add_parser("create", parents=[common])
    create.add_argument("name")
    create.add_argument("--uid")
    apps.add_parser("show", parents=[common]).add_argument("app")

    endpoints = _group(commands, "endpoints", "list, create and recover endpoints")
    endpoints.add_parser("list", parents=[common]).add_argument("app")
    add = endpoints.add_parser("create", parents=[common])
    add.add_argument("app")
    add.add_argument("url")
    add.add_argument("--types", help="comma-separated event types, e.g. batch.*,job.failed")

    events = _group(commands, "events", "send events")
    send = events.add_parser("send", parents=[common])
    send.add_argument("app")
    send.add_argument("type")
    send.add_argument("payload", help="the payload, as JSON")
    send.add_argument("--id", help="the event id (resending it delivers nothing twice)")

    deliveries = _group(commands, "deliveries", "list, show and retry deliveries")
    listing = deliveries.add_parser("list", parents=[common])
    listing.add_argument("app")
    listing.add_argument("--status", choices=["pending", "retrying", "succeeded", "failed"])
    listing.add_argument("--limit", type=int, default=20)
    for action in ("show", "retry"):
        one = deliveries.add_parser(action, parents=[common])
        one.add_argument("app")
        one.add_argument("delivery")
    recovery_cli.add_commands(
        endpoints, _group(commands, "recoveries", "show and cancel bulk recoveries"), common
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run an API client command; the process's exit code."""
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    method, path, body, kind = _request(args)
    url = (args.api_url or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")
    headers = {"authorization": f"Bearer {_api_key(args, settings)}"}
    code = 0
    async with aiohttp.ClientSession(headers=headers) as http:
        api = ApiClient(http, url)
        try:
            data = await api.call(method, path, body)
            if recovery_cli.follows(args):
                code, data = await recovery_cli.follow(api, args, data)
        except ApiCallError as err:
            print(err, file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        rows = data["data"] if isinstance(data, dict) and "data" in data else [data]
        print(_table(rows, TABLES[kind]))
        if kind == "event" and data.get("deliveries") is not None:
            print(_table(data["deliveries"], ["id", "endpoint_id", "status"]))
    return code


def _request(args: argparse.Namespace) -> tuple[str, str, Any, str]:
    """The API call a command makes: method, path, body and the kind of thing it answers."""
    group, action = args.command, getattr(args, f"{args.command}_command")
    if group == "recoveries" or action == "recover":
        return recovery_cli.request(args)
    if group == "apps":
        if action == "create":
            return "POST", "/v1/apps", {"name": args.name, "uid": args.uid}, "app"
        return "GET", f"/v1/apps/{args.app}", None, "app"
    if group == "endpoints":
        base = f"/v1/apps/{args.app}/endpoints"
        if action == "list":
            return "GET", base, None, "endpoint"
        types = args.types.split(",") if args.types else None
        return "POST", base, {"url": args.url, "event_types": types}, "endpoint"
    if group == "events":
        try:
            payload = json.loads(args.payload)
        except json.JSONDecodeError:
            raise SystemExit("hookline: the payload must be JSON") from None
        body = {"type": args.type, "payload": payload, "id": args.id}
        return "POST", f"/v1/apps/{args.app}/events", body, "event"
    base = f"/v1/apps/{args.app}/deliveries"
    if action == "list":
        query = f"?limit={args.limit}" + (f"&status={args.status}" if args.status else "")
        return "GET", base + query, None, "delivery"
    if action == "retry":
        return "POST", f"{base}/{args.delivery}/retry", None, "delivery"
    return "GET", f"{base}/{args.delivery}", None, "delivery"


def _api_key(args: argparse.Namespace, settings: Settings) -> str:
    if args.api_key:
        return str(args.api_key)
    if settings.api_keys:
        return settings.api_keys[0]
    dev_key = settings.data_dir / "api-key"
    if dev_key.exists():
        return dev_key.read_text().strip()
    raise SystemExit("hookline: no API key: pass --api-key or set HOOKLINE_API_KEYS")


def _table(rows: Sequence[dict[str, Any]], columns: list[str]) -> str:
    """Rows as left-aligned columns under a header."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _group(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return commands.add_parser(name, help=help_text).add_subparsers(
        dest=f"{name}_command", required=True
    )
