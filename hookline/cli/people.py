"""``hookline apps|endpoints|events|deliveries|recoveries``: the HTTP API for people, as tables
or JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from hookline.cli import recoveries as recovery_cli
from hookline.cli import views
from hookline.cli.api_client import (
    ApiCallError,
    ApiClient,
    ApiUnreachableError,
    add_api_options,
    api_access,
)
from hookline.cli.parsing import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Subcommands,
    UsageError,
    add_command,
    add_group,
)
from hookline.config.settings import Settings

COMMANDS = ("apps", "endpoints", "events", "deliveries", "recoveries")
STATUSES = ["pending", "retrying", "paused", "succeeded", "failed"]


@dataclass(frozen=True)
class ApiRequest:
    """The API call a command makes, and how its answer prints (a name in ``_show``)."""

    method: str
    path: str
    body: Any
    view: str


def add_commands(commands: Subcommands) -> None:
    """Add the API client commands to ``hookline``'s subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    add_api_options(common)
    common.add_argument("--json", action="store_true", help="print the API's JSON answer as is")

    apps = add_group(commands, "apps", "create and show apps")
    create = add_command(apps, "create", "create an app", common)
    create.add_argument("name", help="its display name")
    create.add_argument("--uid", help="your own unique id for it, usable wherever its id is")
    _app(add_command(apps, "show", "show an app", common))
    endpoints = _add_endpoints(commands, common)
    _add_events(commands, common)
    _add_deliveries(commands, common)
    recovery_cli.add_commands(
        endpoints, add_group(commands, "recoveries", "show and cancel bulk recoveries"), common
    )


def _add_endpoints(commands: Subcommands, common: argparse.ArgumentParser) -> Subcommands:
    endpoints = add_group(
        commands,
        "endpoints",
        "create and list endpoints, show and rotate their signing secrets, recover failures",
    )
    _app(add_command(endpoints, "list", "list an app's endpoints", common))
    add = _app(
        add_command(endpoints, "create", "create an endpoint and print its signing secret", common)
    )
    add.add_argument("url", help="where deliveries are POSTed: an http(s):// URL")
    add.add_argument(
        "--types",
        help="comma-separated event types it receives, * matching the rest"
        " (e.g. batch.*,job.failed); default: every type",
    )
    _endpoint(add_command(endpoints, "secret", "print an endpoint's signing secret", common))
    summary = "replace an endpoint's signing secret; the previous one keeps signing a while"
    rotate = _endpoint(add_command(endpoints, "rotate", summary, common))
    rotate.add_argument(
        "--grace-s",
        type=float,
        metavar="SECONDS",
        help="how long the previous secret keeps signing too, 0 to 604800; default: 86400"
        " (a day); 0 drops it at once",
    )
    rotate.add_argument(
        "--secret",
        help="the new secret, fitting the endpoint's signature scheme; default: a new whsec_ one",
    )
    return endpoints


def _add_events(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    events = add_group(commands, "events", "send, list and show events")
    summary = "send an event to the app's endpoints that take its type"
    send = _app(add_command(events, "send", summary, common))
    send.add_argument("type", help="the event type, e.g. batch.completed")
    send.add_argument("payload", help="the payload, as JSON")
    send.add_argument("--id", help="the event id (resending it delivers nothing twice)")
    listing = _paged(
        _app(add_command(events, "list", "list an app's events, newest first", common))
    )
    listing.add_argument("--type", help="only events of this exact type")
    listing.add_argument("--since", help=f"only events since {recovery_cli.TIME_HELP}")
    show = _app(add_command(events, "show", "show an event: its payload and deliveries", common))
    show.add_argument("event", help="the event's id")


def _add_deliveries(commands: Subcommands, common: argparse.ArgumentParser) -> None:
    deliveries = add_group(commands, "deliveries", "list, show and retry deliveries")
    listing = _paged(_app(add_command(deliveries, "list", "list an app's deliveries", common)))
    listing.add_argument("--status", choices=STATUSES, help="only deliveries in this status")
    for action, summary in (
        ("show", "show a delivery: its last attempt and error, and when the next one is due"),
        ("retry", "retry a delivery now (a failed one starts over with a fresh retry window)"),
    ):
        one = _app(add_command(deliveries, action, summary, common))
        one.add_argument("delivery", help="the delivery's id (dlv_...)")


def _app(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("app", help="the app's id or uid")
    return command


def _endpoint(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _app(command).add_argument("endpoint", help="the endpoint's id (ep_...)")
    return command


def _paged(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument(
        "--limit", type=int, default=20, help="at most this many, 1 to 1000; default: 20"
    )
    command.add_argument("--cursor", help="the next page, as the previous page told it")
    return command


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run an API client command.

    Returns:
        The process's exit code: 0 done, 1 an API or network error (or a followed recovery
        that did not complete), 2 a usage error, 130 Ctrl-C.
    """
    try:
        return asyncio.run(_run(args, settings))
    except UsageError as err:
        print(f"hookline: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    request = _request(args)
    access = api_access(args, settings)
    code = EXIT_OK
    async with access.session() as http:
        api = ApiClient(http, access.url)
        try:
            data = await api.call(request.method, request.path, request.body)
            if recovery_cli.follows(args):
                code, data = await recovery_cli.follow(api, args, data)
        except (ApiCallError, ApiUnreachableError) as err:
            print(f"hookline: {access.explain(err)}", file=sys.stderr)
            return EXIT_ERROR
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _show(request.view, data, args)
    return code


def _request(args: argparse.Namespace) -> ApiRequest:
    """The API call a command makes.

    Raises:
        UsageError: an argument the call cannot use.
    """
    group, action = args.command, getattr(args, f"{args.command}_command")
    if group == "recoveries" or action == "recover":
        return ApiRequest(*recovery_cli.request(args))
    app = f"/v1/apps/{_segment(args.app)}" if "app" in args else ""
    if group == "apps":
        if action == "create":
            return ApiRequest("POST", "/v1/apps", {"name": args.name, "uid": args.uid}, "app")
        return ApiRequest("GET", app, None, "app")
    if group == "endpoints":
        return _endpoints_request(args, f"{app}/endpoints", action)
    if group == "events":
        return _events_request(args, f"{app}/events", action)
    base = f"{app}/deliveries"
    if action == "list":
        query = _query(limit=args.limit, status=args.status, cursor=args.cursor)
        return ApiRequest("GET", base + query, None, "deliveries")
    one = f"{base}/{_segment(args.delivery)}"
    if action == "retry":
        return ApiRequest("POST", f"{one}/retry", None, "delivery")
    return ApiRequest("GET", one, None, "delivery")


def _endpoints_request(args: argparse.Namespace, base: str, action: str) -> ApiRequest:
    if action == "list":
        return ApiRequest("GET", base, None, "endpoints")
    if action == "create":
        types = args.types.split(",") if args.types else None
        return ApiRequest("POST", base, {"url": args.url, "event_types": types}, "endpoint_created")
    secret = f"{base}/{_segment(args.endpoint)}/secret"
    if action == "secret":
        return ApiRequest("GET", secret, None, "secret")
    body = {"grace_s": args.grace_s, "secret": args.secret}
    return ApiRequest(
        "POST", f"{secret}/rotate", {k: v for k, v in body.items() if v is not None}, "secret"
    )


def _events_request(args: argparse.Namespace, base: str, action: str) -> ApiRequest:
    if action == "list":
        since = recovery_cli.api_time(args.since) if args.since else None
        query = _query(limit=args.limit, type=args.type, since=since, cursor=args.cursor)
        return ApiRequest("GET", base + query, None, "events")
    if action == "show":
        return ApiRequest("GET", f"{base}/{_segment(args.event)}", None, "event")
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError:
        raise UsageError("the payload must be JSON, e.g. '{\"batch\": 42}'") from None
    body = {"type": args.type, "payload": payload, "id": args.id}
    return ApiRequest("POST", base, body, "event_sent")


def _show(view: str, data: Any, args: argparse.Namespace) -> None:
    """Print an answer for a person: ``view`` is the kind of answer (see ``_request``)."""
    if view in ("endpoints", "events", "deliveries"):
        print(views.listing(data, view))
        if data.get("next_cursor"):
            print(f"more on the next page: add --cursor {data['next_cursor']}", file=sys.stderr)
    elif view == "endpoint_created":
        print(views.table([data], views.TABLES["endpoint"]))
        print(f"\n{views.fields([('secret', data['secret'])])}")
        print(
            "Store the secret now: it is not shown again unless you run"
            f" `hookline endpoints secret {args.app} {data['id']}`.",
            file=sys.stderr,
        )
    elif view == "event_sent":
        print(views.table([data], views.TABLES["event_sent"]))
        print(views.event_deliveries(data))
    elif view == "event":
        print(views.event(data))
    elif view == "delivery":
        print(views.delivery(data))
    elif view == "secret":
        print(views.secret(data))
    else:  # one app or recovery
        print(views.table([data], views.TABLES[view]))


def _segment(value: str) -> str:
    """``value`` as one segment of a URL path."""
    return quote(value, safe="")


def _query(**params: Any) -> str:
    """``?name=value&...`` of the parameters that are set, encoded."""
    given = {name: value for name, value in params.items() if value is not None}
    return f"?{urlencode(given)}" if given else ""
